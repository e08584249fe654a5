"""Analysis of study results: PGR tables and figures, as pure functions over polars frames.

Figures load lazily so that the PGR table (used by the CLI) does not pay for importing matplotlib.
"""

from __future__ import annotations

from typing import Any

from analysis.pgr import compute_pgr, summarize_pgr, undefined_pgr_rows

_FIGURES = ("plot_accuracy_vs_compute", "plot_pgr_vs_compute", "write_figures")
__all__ = ["compute_pgr", "summarize_pgr", "undefined_pgr_rows", *_FIGURES]


def __getattr__(name: str) -> Any:
    if name in _FIGURES:
        from analysis import figures

        return getattr(figures, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")

"""Analysis of study results as pure functions over polars frames: PGR with intervals, scaling
fits, method comparisons, baselines, figures and the report. No Ray, no torch.

Figures load lazily so that the PGR tables (used by the CLI) do not pay for importing matplotlib.
"""

from __future__ import annotations

from typing import Any

from analysis.intervals import aggregate_pgr, pgr_intervals
from analysis.pgr import compute_pgr, undefined_pgr_rows

_FIGURES = ("build_figures", "plot_accuracy_vs_compute", "plot_pgr_vs_compute", "write_figures")
__all__ = ["aggregate_pgr", "compute_pgr", "pgr_intervals", "undefined_pgr_rows", *_FIGURES]


def __getattr__(name: str) -> Any:
    if name in _FIGURES:
        from analysis import figures

        return getattr(figures, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")

"""What every figure shares: the colour-blind-safe palette, axis finishing, atomic saving.

Figures are `matplotlib.figure.Figure` objects (no pyplot), so no GUI backend or global state.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

# Okabe–Ito without black (black is the ceiling), ordered so neighbouring rungs contrast and
# the low-contrast yellow comes last.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
CEILING_GID = "ceiling"
REFERENCE_GID = "reference"
DPI = 150
FORMATS = ("png", "svg")  # PNG to look at, SVG to print or put in a paper
STRONG_COMPUTE_LABEL = "strong student effective compute (FLOPs, log scale)"
MODEL_COMPUTE_LABEL = "model effective compute (FLOPs, log scale)"
CI_NOTE = "bars: 95% CI over seeds"
# A pair whose weak-to-ceiling gap is too small to read: a hollow ring around its point, so the
# value stays visible but cannot be mistaken for a measured one.
GAP_MARK = {"marker": "o", "s": 180, "facecolors": "none", "edgecolors": "black", "zorder": 4}
GAP_HATCH = "///"


def palette(names_by_order: list[str]) -> dict[str, str]:
    """A colour per name in the given order; past seven, a CVD-safe perceptual ramp."""
    if len(names_by_order) <= len(OKABE_ITO):
        return dict(zip(names_by_order, OKABE_ITO, strict=False))
    cmap = matplotlib.colormaps["cividis"]
    step = 0.85 / max(len(names_by_order) - 1, 1)
    return {name: to_hex(cmap(i * step)) for i, name in enumerate(names_by_order)}


def weak_colours(weak_compute: dict[str, float]) -> dict[str, str]:
    """A colour per weak supervisor, in order of its compute, so colour tracks supervisor size."""
    return palette(sorted(weak_compute, key=lambda name: (weak_compute[name], name)))


def new_figure(width: float = 7.0, height: float = 4.5) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def finish_log_axes(ax: Axes, xlabel: str, ylabel: str, title: str, legend_title: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best", title=legend_title, title_fontsize="small")


def slug(name: str) -> str:
    """A file-name-safe form: dataset names may carry '/' (hub paths) or spaces."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "unnamed"


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI)
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target then rename, so a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Gain against misfit per dataset: does a student that disagrees more with its weak labels
gain more? Left: accuracy gain vs misfit; right: Brier gain vs squared misfit with y = x, the
bound of Charikar, Pabbaraju & Shiragur (2024)."""

from __future__ import annotations

import matplotlib
import polars as pl
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.figures.methods import MARKERS
from analysis.figures.style import REFERENCE_GID, palette


def plot_diagnostics(table: pl.DataFrame, dataset: str) -> Figure:
    """One point per (pair, method), means over seeds (`analysis.diagnostics` table): colour
    is the method, marker the weak → strong pair. Each point's gid is `method|weak → strong`."""
    frame = table.filter(pl.col("dataset") == dataset)
    methods = sorted(frame["method"].unique().to_list())
    colours = _method_colours(methods)
    pairs = [
        f"{w} → {s}"
        for w, s in frame.select("weak_model", "strong_model")
        .unique(maintain_order=True)
        .iter_rows()
    ]
    markers = {pair: MARKERS[i % len(MARKERS)] for i, pair in enumerate(pairs)}
    fig = Figure(figsize=(12.5, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    for row in frame.iter_rows(named=True):
        pair = f"{row['weak_model']} → {row['strong_model']}"
        style = {"color": colours[row["method"]], "marker": markers[pair], "s": 50, "zorder": 3}
        gid = f"{row['method']}|{pair}"
        if row["misfit"] is not None and row["accuracy_gain"] is not None:
            left.scatter([row["misfit"]], [row["accuracy_gain"]], gid=gid, **style)
        if row["misfit_sq"] is not None and row["brier_gain"] is not None:
            right.scatter([row["misfit_sq"]], [row["brier_gain"]], gid=gid, **style)
    left.axhline(0.0, color="grey", linewidth=1, linestyle=":")
    _finish(
        left,
        "misfit (share of training labels the student contradicts)",
        "accuracy gain (student − weak, test)",
        f"{dataset}: accuracy gain vs misfit",
    )
    _bound(right)
    _finish(
        right,
        "squared misfit (mean (student P − label P)², training half)",
        "Brier gain (weak − student, test)",
        f"{dataset}: Brier gain vs squared misfit",
    )
    # outside the axes: a zoo of methods would cover the points
    fig.legend(
        handles=[
            Line2D([], [], color=colours[m], marker="o", linestyle="", label=m) for m in methods
        ],
        fontsize="small",
        loc="outside right upper",
        title="method",
        title_fontsize="small",
    )
    fig.legend(
        handles=[
            Line2D([], [], color="grey", marker=markers[p], linestyle="", label=p) for p in pairs
        ]
        + [Line2D([], [], color="black", linestyle="--", label="y = x (theory's bound)")],
        fontsize="small",
        loc="outside right lower",
        title="weak → strong",
        title_fontsize="small",
    )
    return fig


def _method_colours(methods: list[str]) -> dict[str, str]:
    """Distinct hues for up to 20 methods (points of neighbouring methods sit side by side);
    the study palette beyond that."""
    if len(methods) > 20:
        return palette(methods)
    cmap = matplotlib.colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: to_hex(cmap(i)) for i, m in enumerate(methods)}


def _bound(ax: Axes) -> None:
    """The line y = x over the squared misfits' range (never negative): above it, the gain
    exceeds the misfit."""
    xs = [x for coll in ax.collections for x, _ in coll.get_offsets()]
    ys = [y for coll in ax.collections for _, y in coll.get_offsets()]
    high = max([0.0, *xs, *ys]) or 1.0
    ax.plot([0.0, high], [0.0, high], color="black", linestyle="--", linewidth=1, gid=REFERENCE_GID)
    ax.set_xlim(-0.03 * high, 1.05 * high)
    if not xs:
        ax.text(0.5, 0.5, "no Brier scores recorded", transform=ax.transAxes, ha="center")


def _finish(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)

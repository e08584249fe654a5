"""Methods side by side per weak/strong pair: PGR with its CI, one marker colour per method."""

from __future__ import annotations

import polars as pl
from matplotlib.figure import Figure

from analysis.figures.style import GAP_MARK, REFERENCE_GID, new_figure, palette
from analysis.intervals import GAP_TOO_SMALL

MARKERS = ("o", "s", "D", "^", "v", "P", "X")


def plot_method_comparison(intervals: pl.DataFrame, dataset: str) -> Figure:
    """Rows are pairs (weak → strong, smallest gap first); methods are offset within a row; a
    pair whose gap is too small to read has its points ringed."""
    frame = intervals.filter(pl.col("dataset") == dataset)
    pairs = (
        frame.group_by("weak_model", "strong_model")
        .agg(pl.col("weak_effective_compute").max(), pl.col("strong_effective_compute").max())
        .sort("weak_effective_compute", "strong_effective_compute", "weak_model", "strong_model")
    )
    labels = [f"{w} → {s}" for w, s, *_ in pairs.iter_rows()]
    methods = sorted(frame["method"].unique().to_list())
    colours = palette(methods)
    fig, ax = new_figure(7.0, 1.5 + 0.45 * len(labels) * max(1, len(methods) / 2))
    for level in (0.0, 1.0):
        ax.axvline(level, color="grey", linewidth=1, linestyle=":", gid=REFERENCE_GID)
    spacing = 0.7 / max(len(methods), 1)
    thin_x: list[float] = []
    thin_y: list[float] = []
    for k, method in enumerate(methods):
        rows = frame.filter(pl.col("method") == method)
        xs, ys, lows, highs = [], [], [], []
        for row in rows.iter_rows(named=True):
            if row["pgr"] is None:
                continue
            index = labels.index(f"{row['weak_model']} → {row['strong_model']}")
            xs.append(row["pgr"])
            ys.append(index - 0.35 + spacing * (k + 0.5))
            has_ci = row["pgr_low"] is not None
            lows.append(row["pgr"] - row["pgr_low"] if has_ci else 0.0)
            highs.append(row["pgr_high"] - row["pgr"] if has_ci else 0.0)
            if row["gap_too_small"]:
                thin_x.append(xs[-1])
                thin_y.append(ys[-1])
        container = ax.errorbar(
            xs,
            ys,
            xerr=[lows, highs],
            fmt=MARKERS[k % len(MARKERS)],
            color=colours[method],
            capsize=3,
            label=method,
        )
        container.lines[0].set_gid(f"method:{method}")  # the markers, not the caps
    if thin_x:
        ax.scatter(thin_x, thin_y, label=GAP_TOO_SMALL, gid="gap-too-small", **GAP_MARK)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("PGR (fraction of gap, mean over seeds; bars: 95% CI)")
    ax.set_ylabel("weak supervisor → strong student")
    ax.set_title(f"{dataset}: methods compared")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize="small", loc="best", title="method", title_fontsize="small")
    return fig

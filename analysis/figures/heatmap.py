"""PGR as a weak × strong grid: where along the ladder weak supervision recovers the most."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from analysis.figures.style import GAP_HATCH, new_figure
from analysis.intervals import GAP_TOO_SMALL

UNDEFINED_COLOUR = "#BBBBBB"
LABEL_BOX = {"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "boxstyle": "round"}


def _ladder(frame: pl.DataFrame, name: str, compute: str) -> list[str]:
    per_model = frame.group_by(name).agg(pl.col(compute).max())
    return [m for m, _ in sorted(per_model.iter_rows(), key=lambda r: (r[1] or 0.0, r[0]))]


def plot_pgr_heatmap(intervals: pl.DataFrame, dataset: str, method: str) -> Figure:
    """Cells hold mean PGR and its 95% CI; grey cells are pairs whose PGR is undefined, hatched
    cells pairs whose gap is too small to read, blank cells are not weak < strong pairs."""
    cells = intervals.filter((pl.col("dataset") == dataset) & (pl.col("method") == method))
    weak = _ladder(cells, "weak_model", "weak_effective_compute")
    strong = _ladder(cells, "strong_model", "strong_effective_compute")
    grid = np.full((len(weak), len(strong)), np.nan)
    fig, ax = new_figure(max(5.5, 1.6 + 1.3 * len(strong)), 1.6 + 0.8 * max(len(weak), 2))
    defined = [v for v in cells["pgr"].to_list() if v is not None]
    low, high = min([0.0, *defined]), max([1.0, *defined])
    for row in cells.iter_rows(named=True):
        i, j = weak.index(row["weak_model"]), strong.index(row["strong_model"])
        if row["pgr"] is None:
            ax.add_patch(_undefined_patch(j, i))
            ax.text(
                j, i, "undefined", ha="center", va="center", fontsize="small", gid=f"cell:{i},{j}"
            )
            continue
        grid[i, j] = row["pgr"]
        text = f"{row['pgr']:+.2f}"
        if row["pgr_low"] is not None:
            text += f"\n[{row['pgr_low']:+.2f}, {row['pgr_high']:+.2f}]"
        if row["gap_too_small"]:
            text += f"\n{GAP_TOO_SMALL}"
            ax.add_patch(
                Rectangle(
                    (j - 0.5, i - 0.5),
                    1,
                    1,
                    fill=False,
                    hatch=GAP_HATCH,
                    edgecolor="#555555",
                    linewidth=0,
                    gid="gap-too-small",
                    zorder=2,
                )
            )
        shade = (row["pgr"] - low) / (high - low) if high > low else 0.5
        ax.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize="small",
            color="white" if shade < 0.55 and not row["gap_too_small"] else "black",
            # the hatching must not hide the numbers: a pale box behind them
            bbox=LABEL_BOX if row["gap_too_small"] else None,
            zorder=3,
            gid=f"cell:{i},{j}",
        )
    image = ax.imshow(
        np.ma.masked_invalid(grid), cmap="cividis", vmin=low, vmax=high, aspect="auto"
    )
    ax.set_xticks(range(len(strong)), strong, rotation=20, ha="right")
    ax.set_yticks(range(len(weak)), weak)
    ax.set_xlabel("strong student (left to right: more effective compute)")
    ax.set_ylabel("weak supervisor")
    ax.set_title(f"{dataset} — {method}\nPGR, mean over seeds [95% CI]")
    fig.colorbar(image, ax=ax, label="PGR (fraction of gap)")
    return fig


def _undefined_patch(x: float, y: float) -> Rectangle:
    return Rectangle((x - 0.5, y - 0.5), 1, 1, color=UNDEFINED_COLOUR, gid="undefined")

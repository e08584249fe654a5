"""Fine-tuning against zero/few-shot prompting of the same models, on one compute axis."""

from __future__ import annotations

import re

import polars as pl
from matplotlib.figure import Figure

from analysis.figures.scaling import draw_ceiling, per_strong, seed_stats, weak_compute
from analysis.figures.style import (
    MODEL_COMPUTE_LABEL,
    finish_log_axes,
    new_figure,
    weak_colours,
)

GT_SHOT_COLOUR = "#000000"
ZERO_SHOT_COLOUR = "#777777"


def _shots(method: str) -> str:
    match = re.search(r"_k(\d+)$", method)
    return match.group(1) if match else "?"


def plot_baselines(
    results: pl.DataFrame, pgr: pl.DataFrame, dataset: str, student_method: str
) -> Figure:
    """Ceiling and weak-to-strong students (fine-tuned, solid) beside prompting (dotted):
    zero-shot, few-shot with true labels, and few-shot with each weak supervisor's labels."""
    fig, ax = new_figure(7.5, 5.0)
    rows = results.filter(pl.col("dataset") == dataset)
    draw_ceiling(ax, results, dataset, "fine-tuned on ground truth (ceiling)")
    students = pgr.filter((pl.col("dataset") == dataset) & (pl.col("method") == student_method))
    prompted = rows.filter(pl.col("stage") == "baseline")
    weak_of_prompts = prompted.filter(pl.col("weak_model").is_not_null())
    compute = {**weak_compute(weak_of_prompts), **weak_compute(students)}
    colours = weak_colours(compute)
    for weak in sorted(compute, key=lambda name: (compute[name], name)):
        stats = per_strong(students, weak, "student_accuracy")
        if stats.height:
            ax.plot(
                stats["compute"].to_list(),
                stats["mean"].to_list(),
                color=colours[weak],
                marker="o",
                label=f"fine-tuned on {weak}'s labels ({student_method})",
                gid=f"student:{weak}",
            )
    for method in sorted(prompted["method"].unique().to_list()):
        of_method = prompted.filter(pl.col("method") == method)
        for weak in sorted(of_method["weak_model"].unique().to_list(), key=lambda w: w or ""):
            group = of_method.filter(
                pl.col("weak_model").is_null() if weak is None else pl.col("weak_model") == weak
            )
            stats = seed_stats(group, ["model"], "test_accuracy", "effective_compute")
            if method == "zeroshot":
                colour, marker, label = ZERO_SHOT_COLOUR, "D", "zero-shot prompt"
            elif weak is None:
                colour, marker = GT_SHOT_COLOUR, "^"
                label = f"{_shots(method)}-shot prompt, true labels"
            else:
                colour, marker = colours[weak], "v"
                label = f"{_shots(method)}-shot prompt, {weak}'s labels"
            x, y = stats["compute"].to_list(), stats["mean"].to_list()
            ax.plot(
                x,
                y,
                color=colour,
                marker=marker,
                linestyle=":",
                markersize=8,
                markeredgecolor="black",
                label=label,
                gid=f"prompt:{method}:{weak}",
            )
    finish_log_axes(
        ax,
        MODEL_COMPUTE_LABEL,
        "test accuracy (fraction, mean over seeds)",
        f"{dataset}: fine-tuning vs zero/few-shot prompting",
        "solid: fine-tuned · dotted: prompted",
    )
    return fig

"""The paper's scaling figures: student accuracy and PGR against compute, per weak supervisor."""

from __future__ import annotations

import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.figures.style import (
    CEILING_GID,
    CI_NOTE,
    GAP_MARK,
    MODEL_COMPUTE_LABEL,
    REFERENCE_GID,
    STRONG_COMPUTE_LABEL,
    finish_log_axes,
    new_figure,
    weak_colours,
)
from analysis.intervals import GAP_TOO_SMALL, pair_gaps
from analysis.pgr import published_ceilings
from analysis.stats import t_interval


def seed_stats(frame: pl.DataFrame, keys: list[str], value: str, compute: str) -> pl.DataFrame:
    """Mean over seeds of `value` per `keys` with its 95% t interval, sorted by compute.

    Undefined values (null PGR) are left out; a key with one value has no interval.
    """
    rows = []
    defined = frame.filter(pl.col(value).is_not_null() & pl.col(value).is_not_nan())
    for key, group in defined.group_by(keys):
        values = group[value].to_numpy()
        low, high = t_interval(values) or (None, None)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "compute": group[compute].max(),
                "mean": float(values.mean()),
                "low": low,
                "high": high,
            }
        )
    schema = {**dict.fromkeys(keys, pl.String)}
    schema.update(compute=pl.Float64, mean=pl.Float64, low=pl.Float64, high=pl.Float64)
    return pl.DataFrame(rows, schema=schema).sort("compute", *keys)


def weak_compute(pgr: pl.DataFrame) -> dict[str, float]:
    per_weak = pgr.group_by("weak_model").agg(pl.col("weak_effective_compute").max())
    return {name: compute or 0.0 for name, compute in per_weak.iter_rows()}


def draw_series(ax: Axes, stats: pl.DataFrame, colour: str, label: str, gid: str) -> None:
    """A mean line with CI bars; bars are a collection so `ax.lines` stays one per series."""
    x, mean = stats["compute"].to_list(), stats["mean"].to_list()
    ax.plot(x, mean, color=colour, marker="o", label=label, gid=gid)
    _draw_bars(ax, stats, colour)


def _draw_bars(ax: Axes, stats: pl.DataFrame, colour: str) -> None:
    with_ci = stats.filter(pl.col("low").is_not_null())
    if with_ci.height:
        centre = with_ci["mean"].to_numpy()
        spread = [centre - with_ci["low"].to_numpy(), with_ci["high"].to_numpy() - centre]
        ax.errorbar(
            with_ci["compute"].to_list(),
            centre,
            yerr=spread,
            fmt="none",
            ecolor=colour,
            elinewidth=1,
            capsize=0,  # caps would be Line2D objects and blur "one line per series"
        )


def draw_ceiling(ax: Axes, results: pl.DataFrame, dataset: str, label: str) -> pl.DataFrame:
    """The ground-truth runs' mean accuracy per model as a dashed black line with CI bars."""
    truth_rows = results.filter(published_ceilings(results) & (pl.col("dataset") == dataset))
    truth = seed_stats(truth_rows, ["model"], "test_accuracy", "effective_compute")
    x, y = truth["compute"].to_list(), truth["mean"].to_list()
    ax.plot(x, y, color="black", linestyle="--", marker=".", label=label, gid=CEILING_GID)
    _draw_bars(ax, truth, "black")
    return truth


def per_strong(students: pl.DataFrame, weak: str, value: str) -> pl.DataFrame:
    """`value` over seeds per strong student of one weak supervisor, by strong compute."""
    chosen = students.filter(pl.col("weak_model") == weak)
    return seed_stats(chosen, ["strong_model"], value, "strong_effective_compute")


def _ordered_weak(students: pl.DataFrame) -> tuple[list[str], dict[str, float], dict[str, str]]:
    compute = weak_compute(students)
    order = sorted(compute, key=lambda name: (compute[name], name))
    return order, compute, weak_colours(compute)


def plot_accuracy_vs_compute(
    results: pl.DataFrame, pgr: pl.DataFrame, dataset: str, method: str
) -> Figure:
    """Students per weak supervisor against the ground-truth ceiling (Burns et al. Fig. 3)."""
    fig, ax = new_figure()
    truth = draw_ceiling(ax, results, dataset, "ground-truth ceiling")
    truth_by_model = {row["model"]: row for row in truth.iter_rows(named=True)}
    students = pgr.filter((pl.col("dataset") == dataset) & (pl.col("method") == method))
    order, compute, colours = _ordered_weak(students)
    for weak in order:
        stats = per_strong(students, weak, "student_accuracy")
        label = f"weak supervisor: {weak} ({compute[weak]:.1e} FLOPs)"
        draw_series(ax, stats, colours[weak], label, f"weak:{weak}")
        own = truth_by_model.get(weak)
        if own is not None:  # the supervisor's own accuracy, where its students start from
            ax.scatter(
                [own["compute"]],
                [own["mean"]],
                color=colours[weak],
                marker="s",
                s=60,
                edgecolors="black",
                zorder=3,
                gid=f"weak-point:{weak}",
            )
    # the x axis also carries the weak models and the ceiling, not only strong students
    finish_log_axes(
        ax,
        MODEL_COMPUTE_LABEL,
        "test accuracy (fraction, mean over seeds)",
        f"{dataset} — {method}: weak-to-strong student accuracy",
        CI_NOTE,
    )
    return fig


def plot_pgr_vs_compute(pgr: pl.DataFrame, dataset: str, method: str) -> Figure:
    """PGR per weak supervisor with its CI band; undefined seeds are left out, never counted as
    0 or clipped; a point whose gap is too small to read is ringed."""
    fig, ax = new_figure()
    for level in (0.0, 1.0):
        ax.axhline(level, color="grey", linewidth=1, linestyle=":", gid=REFERENCE_GID)
    students = pgr.filter((pl.col("dataset") == dataset) & (pl.col("method") == method))
    order, compute, colours = _ordered_weak(students)
    thin = pair_gaps(students).filter(pl.col("gap_too_small"))
    labelled = False
    for weak in order:
        stats = per_strong(students, weak, "pgr")
        ringed = stats.join(
            thin.filter(pl.col("weak_model") == weak).select("strong_model"), on="strong_model"
        )
        if ringed.height:
            ax.scatter(
                ringed["compute"].to_list(),
                ringed["mean"].to_list(),
                label=None if labelled else GAP_TOO_SMALL,
                gid=f"gap-too-small:{weak}",
                **GAP_MARK,
            )
            labelled = True
        suffix = "" if stats.height else ", PGR undefined"
        label = f"weak supervisor: {weak} ({compute[weak]:.1e} FLOPs{suffix})"
        draw_series(ax, stats, colours[weak], label, f"weak:{weak}")
        band = stats.filter(pl.col("low").is_not_null())
        if band.height > 1:
            ax.fill_between(
                band["compute"].to_list(),
                band["low"].to_list(),
                band["high"].to_list(),
                color=colours[weak],
                alpha=0.15,
                linewidth=0,
                gid=f"band:{weak}",
            )
    finish_log_axes(
        ax,
        STRONG_COMPUTE_LABEL,
        "PGR (fraction of gap, mean over seeds)",
        f"{dataset} — {method}: performance gap recovered",
        f"{CI_NOTE} (band)",
    )
    return fig

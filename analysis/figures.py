"""The paper's figures: student accuracy and PGR against strong-model compute, per weak supervisor.

Built on `matplotlib.figure.Figure` (no pyplot), so no GUI backend or global figure state is used.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import matplotlib
import polars as pl
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

# Okabe–Ito without black (black is the ceiling), ordered so neighbouring rungs contrast and
# the low-contrast yellow comes last.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
CEILING_GID = "ceiling"
REFERENCE_GID = "reference"
DPI = 150
STRONG_COMPUTE_LABEL = "strong student effective compute (FLOPs, log scale)"
MODEL_COMPUTE_LABEL = "model effective compute (FLOPs, log scale)"
SPREAD_NOTE = "bars: min–max over seeds"


def weak_colours(weak_compute: dict[str, float]) -> dict[str, str]:
    """A colour per weak supervisor, in order of its compute, so colour tracks supervisor size."""
    ordered = sorted(weak_compute, key=lambda name: (weak_compute[name], name))
    if len(ordered) <= len(OKABE_ITO):
        return dict(zip(ordered, OKABE_ITO, strict=False))
    # more rungs than categorical colours: fall back to a perceptually uniform, CVD-safe ramp
    cmap = matplotlib.colormaps["cividis"]
    step = 0.85 / max(len(ordered) - 1, 1)
    return {name: to_hex(cmap(i * step)) for i, name in enumerate(ordered)}


def _seed_stats(frame: pl.DataFrame, keys: list[str], value: str, compute: str) -> pl.DataFrame:
    """Mean and min/max over seeds of `value` per `keys`, sorted by compute."""
    return (
        frame.filter(pl.col(value).is_not_null() & pl.col(value).is_not_nan())
        .group_by(keys)
        .agg(
            pl.col(compute).max().alias("compute"),
            pl.col(value).mean().alias("mean"),
            pl.col(value).min().alias("low"),
            pl.col(value).max().alias("high"),
        )
        .sort("compute", *keys)
    )


def _ground_truth_means(results: pl.DataFrame, dataset: str) -> pl.DataFrame:
    truth = results.filter((pl.col("stage") == "ground_truth") & (pl.col("dataset") == dataset))
    return _seed_stats(truth, ["model"], "test_accuracy", "effective_compute")


def _weak_compute(pgr: pl.DataFrame) -> dict[str, float]:
    per_weak = pgr.group_by("weak_model").agg(pl.col("weak_effective_compute").max())
    return {name: compute or 0.0 for name, compute in per_weak.iter_rows()}


def _draw_series(ax: Axes, stats: pl.DataFrame, colour: str, label: str, gid: str) -> None:
    """A mean line with min–max bars; bars are a collection so `ax.lines` stays one per series."""
    x, mean = stats["compute"].to_list(), stats["mean"].to_list()
    ax.plot(x, mean, color=colour, marker="o", label=label, gid=gid)
    if stats.height:
        spread = [
            [m - lo for m, lo in zip(mean, stats["low"], strict=True)],
            [hi - m for m, hi in zip(mean, stats["high"], strict=True)],
        ]
        ax.errorbar(x, mean, yerr=spread, fmt="none", ecolor=colour, elinewidth=1, capsize=0)


def _finish_axes(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best", title=SPREAD_NOTE, title_fontsize="small")


def plot_accuracy_vs_compute(
    results: pl.DataFrame, pgr: pl.DataFrame, dataset: str, method: str
) -> Figure:
    """Students per weak supervisor against the ground-truth ceiling (Burns et al. Fig. 3)."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    truth = _ground_truth_means(results, dataset)
    ax.plot(
        truth["compute"].to_list(),
        truth["mean"].to_list(),
        color="black",
        linestyle="--",
        marker=".",
        label="ground-truth ceiling",
        gid=CEILING_GID,
    )
    truth_by_model = {row["model"]: row for row in truth.iter_rows(named=True)}
    students = pgr.filter((pl.col("dataset") == dataset) & (pl.col("method") == method))
    weak_compute = _weak_compute(students)
    colours = weak_colours(weak_compute)
    for weak in sorted(weak_compute, key=lambda name: (weak_compute[name], name)):
        stats = _seed_stats(
            students.filter(pl.col("weak_model") == weak),
            ["strong_model"],
            "student_accuracy",
            "strong_effective_compute",
        )
        label = f"weak supervisor: {weak} ({weak_compute[weak]:.1e} FLOPs)"
        _draw_series(ax, stats, colours[weak], label, f"weak:{weak}")
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
    _finish_axes(
        ax,
        MODEL_COMPUTE_LABEL,
        "test accuracy (fraction, mean over seeds)",
        f"{dataset} — {method}: weak-to-strong student accuracy",
    )
    return fig


def plot_pgr_vs_compute(pgr: pl.DataFrame, dataset: str, method: str) -> Figure:
    """PGR per weak supervisor; undefined seeds are left out, never counted as 0 or clipped."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for level in (0.0, 1.0):
        ax.axhline(level, color="grey", linewidth=1, linestyle=":", gid=REFERENCE_GID)
    students = pgr.filter((pl.col("dataset") == dataset) & (pl.col("method") == method))
    weak_compute = _weak_compute(students)
    colours = weak_colours(weak_compute)
    for weak in sorted(weak_compute, key=lambda name: (weak_compute[name], name)):
        stats = _seed_stats(
            students.filter(pl.col("weak_model") == weak),
            ["strong_model"],
            "pgr",
            "strong_effective_compute",
        )
        suffix = "" if stats.height else ", PGR undefined"
        label = f"weak supervisor: {weak} ({weak_compute[weak]:.1e} FLOPs{suffix})"
        _draw_series(ax, stats, colours[weak], label, f"weak:{weak}")
    _finish_axes(
        ax,
        STRONG_COMPUTE_LABEL,
        "PGR (fraction of gap, mean over seeds)",
        f"{dataset} — {method}: performance gap recovered",
    )
    return fig


def _slug(name: str) -> str:
    """A file-name-safe form: dataset names may carry '/' (hub paths) or spaces."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "unnamed"


def _save_atomically(fig: Figure, path: Path) -> None:
    """Write beside the target then rename, so a reader never sees a half-written PNG."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", dpi=DPI)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_figures(results: pl.DataFrame, pgr: pl.DataFrame, out_dir: Path) -> list[Path]:
    """Both figures for every (dataset, method) in the PGR table; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    pairs = pgr.select("dataset", "method").drop_nulls().unique().sort("dataset", "method")
    for dataset, method in pairs.iter_rows():
        stem = f"{_slug(dataset)}_{_slug(method)}"
        figures = {
            f"accuracy_vs_compute_{stem}.png": plot_accuracy_vs_compute(
                results, pgr, dataset, method
            ),
            f"pgr_vs_compute_{stem}.png": plot_pgr_vs_compute(pgr, dataset, method),
        }
        for name, fig in figures.items():
            _save_atomically(fig, out_dir / name)
            paths.append(out_dir / name)
    return paths

"""Report figures, each a `matplotlib.figure.Figure` built from the study's tables.

1. accuracy vs strong compute per weak supervisor, with the ceiling (Burns et al. Fig. 3);
2. PGR vs strong compute with CI bands; 3. PGR heatmap, weak × strong;
4. methods compared per pair; 5. fine-tuning vs zero/few-shot prompting; 6. gain vs misfit
per dataset (diagnostics).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from analysis.compare import default_reference
from analysis.diagnostics import diagnostics_table
from analysis.figures.baselines import plot_baselines
from analysis.figures.diagnostics import plot_diagnostics
from analysis.figures.heatmap import plot_pgr_heatmap
from analysis.figures.methods import plot_method_comparison
from analysis.figures.scaling import plot_accuracy_vs_compute, plot_pgr_vs_compute
from analysis.figures.style import (
    CEILING_GID,
    FORMATS,
    REFERENCE_GID,
    figure_bytes,
    slug,
    write_atomically,
)
from analysis.intervals import pgr_intervals

__all__ = [
    "CEILING_GID",
    "REFERENCE_GID",
    "build_figures",
    "figure_files",
    "plot_accuracy_vs_compute",
    "plot_baselines",
    "plot_diagnostics",
    "plot_method_comparison",
    "plot_pgr_heatmap",
    "plot_pgr_vs_compute",
    "write_figures",
]


def build_figures(results: pl.DataFrame, pgr: pl.DataFrame) -> dict[str, tuple[Figure, str]]:
    """Every figure the tables support, by file stem (no suffix), each with a caption."""
    intervals = pgr_intervals(pgr)
    figures: dict[str, tuple[Figure, str]] = {}
    pairs = pgr.select("dataset", "method").drop_nulls().unique().sort("dataset", "method")
    for dataset, method in pairs.iter_rows():
        stem = f"{slug(dataset)}_{slug(method)}"
        figures[f"accuracy_vs_compute_{stem}"] = (
            plot_accuracy_vs_compute(results, pgr, dataset, method),
            f"{dataset}, {method}: student test accuracy vs effective compute, one line per "
            "weak supervisor (squares: the supervisor itself), dashed: ground-truth ceiling",
        )
        figures[f"pgr_vs_compute_{stem}"] = (
            plot_pgr_vs_compute(pgr, dataset, method),
            f"{dataset}, {method}: PGR vs strong-student compute per weak supervisor, 95% CI; "
            "ringed: gap too small to read",
        )
        figures[f"pgr_heatmap_{stem}"] = (
            plot_pgr_heatmap(intervals, dataset, method),
            f"{dataset}, {method}: PGR for every weak × strong pair; hatched: gap too small "
            "to read",
        )
    for dataset in sorted(pgr["dataset"].drop_nulls().unique().to_list()):
        methods = pgr.filter(pl.col("dataset") == dataset)["method"].drop_nulls().unique()
        if methods.len() > 1:
            figures[f"method_comparison_{slug(dataset)}"] = (
                plot_method_comparison(intervals, dataset),
                f"{dataset}: PGR of each method per pair, 95% CI; ringed: gap too small to read",
            )
        prompted = results.filter((pl.col("stage") == "baseline") & (pl.col("dataset") == dataset))
        if prompted.height:
            fine_tuned = [m for m in methods.to_list() if not m.startswith("fewshot")]
            reference = default_reference(fine_tuned) or "xent"
            figures[f"baselines_{slug(dataset)}"] = (
                plot_baselines(results, pgr, dataset, reference),
                f"{dataset}: fine-tuning ({reference}) vs zero/few-shot prompting",
            )
    diagnostics = diagnostics_table(pgr)
    for dataset in sorted(diagnostics["dataset"].unique().to_list()):
        figures[f"diagnostics_{slug(dataset)}"] = (
            plot_diagnostics(diagnostics, dataset),
            f"{dataset}: (left) accuracy gain vs misfit on the weak labels, (right) Brier gain vs "
            "squared misfit with y = x, the bound of Charikar et al. (2024); one point per pair "
            "and method, mean over seeds; colour: method, marker: pair",
        )
    return figures


def figure_files(
    results: pl.DataFrame, pgr: pl.DataFrame, formats: tuple[str, ...] = FORMATS
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every figure rendered once per format: file name → bytes, and stem → caption."""
    files: dict[str, bytes] = {}
    captions: dict[str, str] = {}
    for stem, (fig, caption) in build_figures(results, pgr).items():
        captions[stem] = caption
        for fmt in formats:
            files[f"{stem}.{fmt}"] = figure_bytes(fig, fmt)
    return files, captions


def write_figures(
    results: pl.DataFrame, pgr: pl.DataFrame, out_dir: Path, formats: tuple[str, ...] = FORMATS
) -> list[Path]:
    """Each figure in each format, written atomically; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, _ = figure_files(results, pgr, formats)
    for name, data in files.items():
        write_atomically(out_dir / name, data)
    return [out_dir / name for name in files]

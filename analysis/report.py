"""Everything a study report says, computed once from the results table: PGR with intervals,
the cross-dataset aggregate, fits, method comparisons, baselines, per-pair diagnostics (misfit,
error overlap), what is missing or excluded and why, and what each dataset split held and lost
to length limits. Rendering (Markdown, HTML) lives in `analysis.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from analysis.baselines import baseline_table
from analysis.compare import compare_methods
from analysis.diagnostics import (
    DIAGNOSTICS_SCHEMA,
    SUMMARY_SCHEMA,
    diagnostics_summary,
    diagnostics_table,
)
from analysis.fits import extrapolate, fit_accuracy, fit_pgr, fits_table
from analysis.intervals import aggregate_pgr, pgr_intervals
from analysis.pgr import compute_pgr, undefined_pgr_rows
from analysis.schema import DATA_COUNTS_SCHEMA, RESULT_COLUMNS, conform
from analysis.stats import LEVEL


@dataclass(frozen=True)
class MissingJob:
    """A planned job without a result: the report names it rather than silently shrinking."""

    stage: str
    title: str
    state: str  # running, failed or pending
    error: str = ""


@dataclass
class Report:
    name: str
    running: bool
    jobs_planned: int
    results: pl.DataFrame
    pgr: pl.DataFrame
    intervals: pl.DataFrame
    aggregate: pl.DataFrame
    fits: pl.DataFrame
    extrapolations: pl.DataFrame
    comparisons: pl.DataFrame
    baselines: pl.DataFrame
    undefined: pl.DataFrame
    missing: list[MissingJob] = field(default_factory=list)
    level: float = LEVEL
    data_counts: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=DATA_COUNTS_SCHEMA)
    )
    # per (dataset, pair, method): misfit, error overlap, gains (analysis.diagnostics)
    diagnostics: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=DIAGNOSTICS_SCHEMA)
    )
    diagnostics_summary: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=SUMMARY_SCHEMA)
    )

    @property
    def n_datasets(self) -> int:
        return self.results["dataset"].n_unique() if self.results.height else 0

    def exclusions(self) -> list[str]:
        """Every place a number is absent or thinner than planned, in words."""
        lines = [
            f"{row['dataset']} seed {row['seed']}: {row['weak_model']} → {row['strong_model']} "
            f"({row['method']}) has no PGR — {row['reason']}"
            for row in self.undefined.iter_rows(named=True)
        ]
        aggregate = self.aggregate if self.n_datasets > 1 else pl.DataFrame()  # not shown
        for frame, what in (
            (self.intervals, "PGR"),
            (aggregate, "aggregate PGR"),
            (self.fits, "fit"),
            (self.comparisons, "comparison"),
        ):
            if "note" not in frame.columns:
                continue
            for row in frame.filter(pl.col("note") != "").iter_rows(named=True):
                lines.append(f"{what} {_describe(row)}: {row['note']}")
        return lines


def _describe(row: dict[str, object]) -> str:
    if "group" in row:  # a fit
        method = f" {row['method']}" if row.get("method") else ""
        return f"{row['dataset']}{method} {row['response']} vs {row['predictor']} ({row['group']})"
    if "metric" in row:
        return f"{row['method']} − {row['reference']} on {row['metric']}"
    where = f"{row['dataset']} " if "dataset" in row else "across datasets, "
    return f"{where}{row['weak_model']} → {row['strong_model']} ({row['method']})"


def build_report(
    name: str,
    results: pl.DataFrame,
    *,
    missing: list[MissingJob] | None = None,
    running: bool = False,
    jobs_planned: int | None = None,
    extrapolate_to: list[float] | None = None,
    reference_method: str | None = None,
    level: float = LEVEL,
    seed: int = 0,
    data_counts: pl.DataFrame | None = None,
) -> Report:
    """The report's numbers; `seed` fixes the resampling so a report is reproducible.

    `data_counts` is the study's `data.parquet` (per dataset and split: examples available,
    used, cut and dropped), when the study wrote one.
    """
    results = conform(results, RESULT_COLUMNS)  # a results.parquet from an older version
    counts = conform(
        data_counts if data_counts is not None else pl.DataFrame(), DATA_COUNTS_SCHEMA
    ).sort("dataset", "split", nulls_last=True)
    pgr = compute_pgr(results)
    accuracy_fits, pgr_fits = fit_accuracy(results, pgr), fit_pgr(pgr)
    fits = accuracy_fits + pgr_fits
    extrapolations = [extrapolate(fits, compute, level) for compute in extrapolate_to or []]
    diagnostics = diagnostics_table(pgr)
    return Report(
        name=name,
        running=running,
        jobs_planned=jobs_planned if jobs_planned is not None else results.height,
        results=results,
        pgr=pgr,
        intervals=pgr_intervals(pgr, level=level),
        aggregate=aggregate_pgr(pgr, level=level, seed=seed),
        fits=fits_table(fits, level),
        extrapolations=pl.concat(extrapolations) if extrapolations else pl.DataFrame(),
        comparisons=compare_methods(pgr, reference_method, level=level, seed=seed),
        baselines=baseline_table(results, pgr, level=level),
        undefined=undefined_pgr_rows(pgr),
        missing=list(missing or []),
        level=level,
        data_counts=counts,
        diagnostics=diagnostics,
        diagnostics_summary=diagnostics_summary(diagnostics),
    )

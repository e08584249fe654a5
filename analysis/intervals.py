"""PGR per weak/strong pair with a confidence interval over seeds, and the paper's aggregate
(median across datasets) with its own interval (see `analysis.stats` for why these intervals).

A seed whose PGR is undefined (ceiling <= weak) is left out of the mean and named in `note`;
a pair with one defined seed gets its value and no interval, never a zero-width one.

Beside the mean of per-seed PGRs each pair gets the PGR of its mean accuracies,
(mean student − mean weak) / (mean ceiling − mean weak): a seed with a tiny gap can throw the
per-seed mean far off while barely moving this one, so a reader who sees the two disagree knows
the gap is thin. A pair whose gap is within its own noise (`analysis.stats.gap_too_small`) is
marked `gap_too_small`, and the tables and figures say "gap too small to read".
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analysis.pgr import PAIR_KEYS, undefined_pgr_rows
from analysis.stats import (
    LEVEL,
    MIN_GAP,
    N_DRAWS,
    dataset_mean_draws,
    gap_too_small,
    keyed_rng,
    percentile_interval,
    t_interval,
)

AGGREGATE_KEYS = ("weak_model", "strong_model", "method")
ONE_SEED = "one seed: no interval"
GAP_TOO_SMALL = "gap too small to read"
GAP_RULE = (
    f"ceiling − weak accuracy is within its own noise: its {{pct}}% t interval over seeds "
    f"reaches 0, or, with one seed, it is below {MIN_GAP:.2f}"
)


def _undefined_note(pgr: pl.DataFrame) -> dict[tuple, str]:
    """Per pair: 'PGR undefined in k of n seeds (why)' for the pairs that have such seeds."""
    totals = {tuple(key): n for *key, n in pgr.group_by(PAIR_KEYS).len().iter_rows()}
    undefined = undefined_pgr_rows(pgr)
    notes = {}
    grouped = undefined.group_by(PAIR_KEYS).agg(pl.len(), pl.col("reason").unique().sort())
    for *key, count, reasons in grouped.iter_rows():
        total = totals[tuple(key)]
        notes[tuple(key)] = f"PGR undefined in {count} of {total} seeds ({', '.join(reasons)})"
    return notes


def _defined_by_pair(pgr: pl.DataFrame, column: str = "pgr") -> dict[tuple, np.ndarray]:
    defined = pgr.filter(pl.col(column).is_not_null() & pl.col(column).is_not_nan())
    return {tuple(key): group[column].to_numpy() for key, group in defined.group_by(PAIR_KEYS)}


def pair_gaps(pgr: pl.DataFrame, *, level: float = LEVEL) -> pl.DataFrame:
    """Per pair: the mean gap (ceiling − weak accuracy) over seeds, its t interval, and
    whether it is too small to read — the one place tables and figures take that mark from."""
    complete = pgr.filter(
        pl.col("weak_accuracy").is_not_null() & pl.col("ceiling_accuracy").is_not_null()
    ).with_columns((pl.col("ceiling_accuracy") - pl.col("weak_accuracy")).alias("gap"))
    rows = []
    for key, group in complete.group_by(PAIR_KEYS):
        gaps = group["gap"].to_numpy()
        low, high = t_interval(gaps, level) or (None, None)
        rows.append(
            {
                **dict(zip(PAIR_KEYS, key, strict=True)),
                "gap": float(gaps.mean()),
                "gap_low": low,
                "gap_high": high,
                "gap_too_small": gap_too_small(gaps, level),
            }
        )
    schema = {
        **dict.fromkeys(PAIR_KEYS, pl.String),
        "gap": pl.Float64,
        "gap_low": pl.Float64,
        "gap_high": pl.Float64,
        "gap_too_small": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)


def _pgr_of_means(pgr: pl.DataFrame) -> pl.DataFrame:
    """(mean student − mean weak) / (mean ceiling − mean weak) over the seeds that have all
    three accuracies; null unless the mean gap is positive, never clipped."""
    complete = pgr.filter(
        pl.col("weak_accuracy").is_not_null()
        & pl.col("ceiling_accuracy").is_not_null()
        & pl.col("student_accuracy").is_not_null()
    )
    means = complete.group_by(PAIR_KEYS).agg(
        pl.col("weak_accuracy").mean().alias("w"),
        pl.col("ceiling_accuracy").mean().alias("c"),
        pl.col("student_accuracy").mean().alias("s"),
    )
    ratio = pl.when(pl.col("c") > pl.col("w")).then(
        (pl.col("s") - pl.col("w")) / (pl.col("c") - pl.col("w"))
    )
    return means.select(*PAIR_KEYS, ratio.alias("pgr_of_means"))


def pgr_intervals(pgr: pl.DataFrame, *, level: float = LEVEL) -> pl.DataFrame:
    """One row per (dataset, weak, strong, method): mean PGR over defined seeds with its
    interval (the closed form of the seed-mean draws `aggregate_pgr` composes), the PGR of mean
    accuracies, PGR on AUROC with its interval, and the gap with its too-small mark."""
    values_by_pair = _defined_by_pair(pgr)
    auroc_by_pair = _defined_by_pair(pgr, "pgr_auroc")
    notes = _undefined_note(pgr)
    summary = (
        pgr.group_by(PAIR_KEYS)
        .agg(
            pl.len().cast(pl.Int64).alias("n_seeds"),
            *[
                pl.col(f"{who}_{metric}").mean()
                for metric in ("accuracy", "auroc")
                for who in ("weak", "ceiling", "student")
            ],
            pl.col("weak_effective_compute").max(),
            pl.col("strong_effective_compute").max(),
        )
        .join(_pgr_of_means(pgr), on=list(PAIR_KEYS), how="left", nulls_equal=True)
        .join(pair_gaps(pgr, level=level), on=list(PAIR_KEYS), how="left", nulls_equal=True)
        .with_columns(pl.col("gap_too_small").fill_null(False))
    )
    rows = []
    for row in summary.iter_rows(named=True):
        key = tuple(row[k] for k in PAIR_KEYS)
        values = values_by_pair.get(key, np.array([]))
        auroc = auroc_by_pair.get(key, np.array([]))
        low, high = t_interval(values, level) or (None, None)
        auroc_low, auroc_high = t_interval(auroc, level) or (None, None)
        parts = [notes.get(key, "")]
        if len(values) == 1:
            parts.append(ONE_SEED)
        if row["gap_too_small"]:
            parts.append(GAP_TOO_SMALL)  # the rule is stated once, beside the table
        rows.append(
            {
                **row,
                "n_defined": len(values),
                "pgr": float(values.mean()) if len(values) else None,
                "pgr_low": low,
                "pgr_high": high,
                "pgr_auroc": float(auroc.mean()) if len(auroc) else None,
                "pgr_auroc_low": auroc_low,
                "pgr_auroc_high": auroc_high,
                "note": "; ".join(filter(None, parts)),
            }
        )
    return _ordered(pl.DataFrame(rows, schema=_INTERVAL_SCHEMA))


_INTERVAL_SCHEMA: dict[str, type[pl.DataType]] = {
    "dataset": pl.String,
    "weak_model": pl.String,
    "strong_model": pl.String,
    "method": pl.String,
    "n_seeds": pl.Int64,
    "n_defined": pl.Int64,
    "pgr": pl.Float64,
    "pgr_low": pl.Float64,
    "pgr_high": pl.Float64,
    "pgr_of_means": pl.Float64,
    "gap": pl.Float64,
    "gap_low": pl.Float64,
    "gap_high": pl.Float64,
    "gap_too_small": pl.Boolean,
    "pgr_auroc": pl.Float64,
    "pgr_auroc_low": pl.Float64,
    "pgr_auroc_high": pl.Float64,
    "weak_accuracy": pl.Float64,
    "ceiling_accuracy": pl.Float64,
    "student_accuracy": pl.Float64,
    "weak_auroc": pl.Float64,
    "ceiling_auroc": pl.Float64,
    "student_auroc": pl.Float64,
    "weak_effective_compute": pl.Float64,
    "strong_effective_compute": pl.Float64,
    "note": pl.String,
}


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    order = ("dataset", "weak_effective_compute", "strong_effective_compute")
    keys = [k for k in order if k in frame.columns]
    return frame.sort(*keys, "method", "weak_model", "strong_model", nulls_last=True)


def aggregate_pgr(
    pgr: pl.DataFrame, *, level: float = LEVEL, n_draws: int = N_DRAWS, seed: int = 0
) -> pl.DataFrame:
    """Per (weak, strong, method): the median across datasets of each dataset's mean PGR.

    Its interval takes the median of joint draws of the datasets' seed means, each dataset
    drawn with its own seed-noise SD (a one-seed dataset borrows the largest, named in `note`);
    a dataset whose PGR is undefined in every seed is left out, named.
    """
    by_pair: dict[tuple, list[tuple[str, np.ndarray]]] = {}
    for (dataset, weak, strong, method), values in _defined_by_pair(pgr).items():
        by_pair.setdefault((weak, strong, method), []).append((dataset, values))
    thin = pair_gaps(pgr, level=level).filter(pl.col("gap_too_small"))
    thin_count = {tuple(k): n for *k, n in thin.group_by(AGGREGATE_KEYS).len().iter_rows()}
    present = pgr.group_by(AGGREGATE_KEYS).agg(
        pl.col("dataset").n_unique().cast(pl.Int64).alias("n_datasets"),
        pl.col("weak_effective_compute").max(),
        pl.col("strong_effective_compute").max(),
    )
    rows = []
    for row in present.iter_rows(named=True):
        key = tuple(row[k] for k in AGGREGATE_KEYS)
        members = sorted(by_pair.get(key, []), key=lambda member: member[0])
        groups = [values for _, values in members]
        drawn = dataset_mean_draws(groups, keyed_rng(seed, key), n_draws) if groups else None
        low = high = None
        notes = []
        if len(members) < row["n_datasets"]:
            notes.append(f"PGR undefined on {row['n_datasets'] - len(members)} dataset(s)")
        if drawn is not None:
            draws, borrowed = drawn
            low, high = percentile_interval(np.median(draws, axis=0), level)
            if borrowed:
                notes.append(
                    f"{borrowed} dataset(s) with one seed: seed noise borrowed from the "
                    "noisiest other dataset"
                )
        elif groups:
            notes.append("one seed per dataset: no interval")
        if thin_count.get(key):
            notes.append(f"{GAP_TOO_SMALL} on {thin_count[key]} dataset(s)")
        rows.append(
            {
                **row,
                "n_defined_datasets": len(members),
                "n_gap_too_small": thin_count.get(key, 0),
                "pgr_median": float(np.median([g.mean() for g in groups])) if groups else None,
                "pgr_low": low,
                "pgr_high": high,
                "note": "; ".join(notes),
            }
        )
    return _ordered(pl.DataFrame(rows, schema=_AGGREGATE_SCHEMA))


_AGGREGATE_SCHEMA: dict[str, type[pl.DataType]] = {
    "weak_model": pl.String,
    "strong_model": pl.String,
    "method": pl.String,
    "n_datasets": pl.Int64,
    "weak_effective_compute": pl.Float64,
    "strong_effective_compute": pl.Float64,
    "n_defined_datasets": pl.Int64,
    "n_gap_too_small": pl.Int64,
    "pgr_median": pl.Float64,
    "pgr_low": pl.Float64,
    "pgr_high": pl.Float64,
    "note": pl.String,
}

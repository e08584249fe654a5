"""PGR per weak/strong pair with a confidence interval over seeds, and the paper's aggregate
(median across datasets) with its own interval (see `analysis.stats` for why these intervals).

A seed whose PGR is undefined (ceiling <= weak) is left out of the mean and named in `note`;
a pair with one defined seed gets its value and no interval, never a zero-width one.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analysis.pgr import PAIR_KEYS, undefined_pgr_rows
from analysis.stats import (
    LEVEL,
    N_DRAWS,
    keyed_rng,
    percentile_interval,
    pooled_mean_draws,
    t_interval,
)

AGGREGATE_KEYS = ("weak_model", "strong_model", "method")
ONE_SEED = "one seed: no interval"


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


def _defined_by_pair(pgr: pl.DataFrame) -> dict[tuple, np.ndarray]:
    defined = pgr.filter(pl.col("pgr").is_not_null() & pl.col("pgr").is_not_nan())
    return {tuple(key): group["pgr"].to_numpy() for key, group in defined.group_by(PAIR_KEYS)}


def pgr_intervals(pgr: pl.DataFrame, *, level: float = LEVEL) -> pl.DataFrame:
    """One row per (dataset, weak, strong, method): mean PGR over defined seeds, its interval
    (the closed form of the seed-mean draws `aggregate_pgr` composes)."""
    values_by_pair = _defined_by_pair(pgr)
    notes = _undefined_note(pgr)
    summary = pgr.group_by(PAIR_KEYS).agg(
        pl.len().cast(pl.Int64).alias("n_seeds"),
        pl.col("weak_accuracy").mean(),
        pl.col("ceiling_accuracy").mean(),
        pl.col("student_accuracy").mean(),
        pl.col("weak_effective_compute").max(),
        pl.col("strong_effective_compute").max(),
    )
    rows = []
    for row in summary.iter_rows(named=True):
        key = tuple(row[k] for k in PAIR_KEYS)
        values = values_by_pair.get(key, np.array([]))
        low, high = t_interval(values, level) or (None, None)
        note = notes.get(key, ONE_SEED if len(values) == 1 else "")
        if len(values) == 1 and key in notes:
            note = f"{note}; {ONE_SEED}"
        rows.append(
            {
                **row,
                "n_defined": len(values),
                "pgr": float(values.mean()) if len(values) else None,
                "pgr_low": low,
                "pgr_high": high,
                "note": note,
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
    "weak_accuracy": pl.Float64,
    "ceiling_accuracy": pl.Float64,
    "student_accuracy": pl.Float64,
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

    Its interval takes the median of joint draws of the datasets' seed means (seed-noise SD
    pooled across datasets); a dataset whose PGR is undefined in every seed is left out, named.
    """
    by_pair: dict[tuple, list[tuple[str, np.ndarray]]] = {}
    for (dataset, weak, strong, method), values in _defined_by_pair(pgr).items():
        by_pair.setdefault((weak, strong, method), []).append((dataset, values))
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
        draws = pooled_mean_draws(groups, keyed_rng(seed, key), n_draws) if groups else None
        low = high = None
        if draws is not None:
            low, high = percentile_interval(np.median(draws, axis=0), level)
        notes = []
        if len(members) < row["n_datasets"]:
            notes.append(f"PGR undefined on {row['n_datasets'] - len(members)} dataset(s)")
        if groups and draws is None:
            notes.append("one seed per dataset: no interval")
        rows.append(
            {
                **row,
                "n_defined_datasets": len(members),
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
    "pgr_median": pl.Float64,
    "pgr_low": pl.Float64,
    "pgr_high": pl.Float64,
    "note": pl.String,
}

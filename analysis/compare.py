"""Method comparison (e.g. logconf against xent), paired on the runs both methods share: the
same dataset, seed, weak supervisor and strong student.

Pairing removes the noise the two methods share (initialisation, weak labels), so the
differences are what a method changes. But paired runs of one (dataset, seed) are not
independent of each other: they share the data split, the weak labels and the ceilings. The
independent unit is therefore the (dataset, seed) cluster: each cluster contributes the mean of
its paired differences, and the interval (t, as for PGR over seeds) and the sign-flip test run
over those cluster means. Nine runs from three seeds are three units, not nine. An exact
sign-flip test of n units cannot give p below 2/2^n (0.25 for three), so below the level's
reach no p-value is printed, only the reason.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analysis.stats import (
    LEVEL,
    keyed_rng,
    sign_flip_pvalue,
    smallest_sign_flip_pvalue,
    t_interval,
)

PAIR_UNIT_KEYS = ("dataset", "seed", "weak_model", "strong_model")  # what two runs pair on
CLUSTER_KEYS = ("dataset", "seed")  # the independent unit
METRICS = ("pgr", "student_accuracy")
PREFERRED_REFERENCE = "xent"


def default_reference(methods: list[str]) -> str | None:
    """Naive fine-tuning is the paper's baseline; without it, the first method by name."""
    if PREFERRED_REFERENCE in methods:
        return PREFERRED_REFERENCE
    return min(methods) if methods else None


def cluster_means(paired: pl.DataFrame, metric: str) -> tuple[np.ndarray, int]:
    """Per (dataset, seed) cluster, the mean paired difference of `metric` over the runs where
    both methods have it; returns those means (sorted by cluster) and how many runs fed them."""
    diff = (pl.col(metric) - pl.col(f"{metric}_reference")).alias("diff")
    defined = paired.select(*CLUSTER_KEYS, diff).drop_nulls("diff").drop_nans("diff")
    means = (
        defined.group_by(CLUSTER_KEYS)
        .agg(pl.col("diff").mean())
        .sort(*CLUSTER_KEYS, nulls_last=True)
    )
    return means["diff"].to_numpy(), defined.height


def compare_methods(
    pgr: pl.DataFrame,
    reference: str | None = None,
    *,
    level: float = LEVEL,
    seed: int = 0,
) -> pl.DataFrame:
    """Each other method minus `reference`, per metric, over (dataset, seed) clusters: mean of
    the cluster means, its t interval, clusters won/lost/tied and a two-sided sign-flip p."""
    methods = sorted(pgr["method"].drop_nulls().unique().to_list())
    reference = reference or default_reference(methods)
    if reference is not None and reference not in methods:
        raise ValueError(
            f"reference method {reference!r} is not in the results; the methods are {methods}"
        )
    rows: list[dict[str, object]] = []
    if reference is None:  # nothing finished yet
        return pl.DataFrame(rows, schema=_COMPARE_SCHEMA)
    base = pgr.filter(pl.col("method") == reference)
    for method in (m for m in methods if m != reference):
        paired = pgr.filter(pl.col("method") == method).join(
            base, on=list(PAIR_UNIT_KEYS), suffix="_reference", nulls_equal=True
        )
        for metric in METRICS:
            units, n_runs = cluster_means(paired, metric)
            rng = keyed_rng(seed, (method, reference, metric))
            rows.append(_row(method, reference, metric, units, n_runs, paired.height, rng, level))
    return pl.DataFrame(rows, schema=_COMPARE_SCHEMA)


def _row(
    method: str,
    reference: str,
    metric: str,
    units: np.ndarray,
    n_runs: int,
    n_shared: int,
    rng: np.random.Generator,
    level: float,
) -> dict[str, object]:
    low = high = p_value = None
    notes = []
    n = len(units)
    if n >= 2:
        low, high = t_interval(units, level) or (None, None)
        floor = smallest_sign_flip_pvalue(n)
        if floor <= 1.0 - level:
            p_value = sign_flip_pvalue(units, rng)
        else:
            notes.append(
                f"{n} independent units (dataset × seed): a sign-flip test cannot give p "
                f"below {floor:.3g}, so none is reported"
            )
    elif n == 1:
        notes.append("one independent unit (dataset × seed): no interval or test")
    else:
        notes.append("no shared runs with this metric defined")
    if 0 < n_runs < n_shared:
        notes.append(f"{n_shared - n_runs} shared run(s) undefined, left out")
    return {
        "method": method,
        "reference": reference,
        "metric": metric,
        "n_units": n,
        "n_runs": n_runs,
        "mean_difference": float(units.mean()) if n else None,
        "diff_low": low,
        "diff_high": high,
        "wins": int(np.sum(units > 0)),
        "losses": int(np.sum(units < 0)),
        "ties": int(np.sum(units == 0)),
        "p_value": p_value,
        "note": "; ".join(notes),
    }


_COMPARE_SCHEMA: dict[str, type[pl.DataType]] = {
    "method": pl.String,
    "reference": pl.String,
    "metric": pl.String,
    "n_units": pl.Int64,  # independent (dataset, seed) clusters
    "n_runs": pl.Int64,  # paired runs inside them
    "mean_difference": pl.Float64,
    "diff_low": pl.Float64,
    "diff_high": pl.Float64,
    "wins": pl.Int64,  # units, not runs
    "losses": pl.Int64,
    "ties": pl.Int64,
    "p_value": pl.Float64,
    "note": pl.String,
}

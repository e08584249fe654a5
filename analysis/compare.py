"""Method comparison (e.g. logconf against xent), paired on the runs both methods share: the
same dataset, seed, weak supervisor and strong student.

Pairing removes the noise the two methods share (data split, weak labels, initialisation), so
the differences are what a method changes. Units are not fully independent (runs of one seed
share a split); the interval and test treat them as exchangeable, as most papers do.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analysis.stats import LEVEL, N_DRAWS, bootstrap_mean_interval, keyed_rng, sign_flip_pvalue

UNIT_KEYS = ("dataset", "seed", "weak_model", "strong_model")
METRICS = ("pgr", "student_accuracy")
PREFERRED_REFERENCE = "xent"


def default_reference(methods: list[str]) -> str | None:
    """Naive fine-tuning is the paper's baseline; without it, the first method by name."""
    if PREFERRED_REFERENCE in methods:
        return PREFERRED_REFERENCE
    return min(methods) if methods else None


def compare_methods(
    pgr: pl.DataFrame,
    reference: str | None = None,
    *,
    level: float = LEVEL,
    n_draws: int = N_DRAWS,
    seed: int = 0,
) -> pl.DataFrame:
    """Each other method minus `reference`, per metric: mean paired difference, its interval,
    wins/losses/ties and a two-sided sign-flip p-value."""
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
            base, on=list(UNIT_KEYS), suffix="_reference", nulls_equal=True
        )
        for metric in METRICS:
            diff = (pl.col(metric) - pl.col(f"{metric}_reference")).alias("diff")
            diffs = paired.select(diff).drop_nulls().drop_nans()["diff"].to_numpy()
            rng = keyed_rng(seed, (method, reference, metric))
            rows.append(_row(method, reference, metric, diffs, len(paired), rng, level, n_draws))
    return pl.DataFrame(rows, schema=_COMPARE_SCHEMA)


def _row(
    method: str,
    reference: str | None,
    metric: str,
    diffs: np.ndarray,
    n_shared: int,
    rng: np.random.Generator,
    level: float,
    n_draws: int,
) -> dict[str, object]:
    low = high = p_value = None
    note = ""
    if len(diffs) >= 2:
        low, high = bootstrap_mean_interval(diffs, rng, n_draws, level)
        p_value = sign_flip_pvalue(diffs, rng)
    elif len(diffs) == 1:
        note = "one shared run: no interval or test"
    else:
        note = "no shared runs with this metric defined"
    if 0 < len(diffs) < n_shared:
        dropped = n_shared - len(diffs)
        note = "; ".join(filter(None, [note, f"{dropped} shared run(s) undefined, left out"]))
    return {
        "method": method,
        "reference": reference,
        "metric": metric,
        "n_units": len(diffs),
        "mean_difference": float(diffs.mean()) if len(diffs) else None,
        "diff_low": low,
        "diff_high": high,
        "wins": int(np.sum(diffs > 0)),
        "losses": int(np.sum(diffs < 0)),
        "ties": int(np.sum(diffs == 0)),
        "p_value": p_value,
        "note": note,
    }


_COMPARE_SCHEMA: dict[str, type[pl.DataType]] = {
    "method": pl.String,
    "reference": pl.String,
    "metric": pl.String,
    "n_units": pl.Int64,
    "mean_difference": pl.Float64,
    "diff_low": pl.Float64,
    "diff_high": pl.Float64,
    "wins": pl.Int64,
    "losses": pl.Int64,
    "ties": pl.Int64,
    "p_value": pl.Float64,
    "note": pl.String,
}

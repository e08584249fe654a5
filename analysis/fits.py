"""Straight-line scaling fits: accuracy and PGR against log10 effective compute, and PGR against
log10(strong/weak compute), each per dataset and method, with t intervals and goodness of fit.

Points are single runs (one per seed), so the residual spread includes seed noise. A group
with points at fewer than two compute levels cannot be fitted and is listed with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis.pgr import published_ceilings
from analysis.stats import LEVEL, LineFit, fit_line

CEILING_GROUP = "ground truth (ceiling)"
X_COMPUTE = "log10 effective compute"
X_STRONG = "log10 strong compute"
X_RATIO = "log10 strong/weak compute"
ALL_PAIRS = "all pairs"


@dataclass(frozen=True)
class Fit:
    dataset: str
    method: str | None  # None for the ceiling, which has no method
    response: str  # "accuracy" or "pgr"
    predictor: str
    group: str  # the weak supervisor, the ceiling, or all pairs
    line: LineFit | None
    note: str = ""


def _fit_group(keys: tuple[str, str | None, str, str, str], x: np.ndarray, y: np.ndarray) -> Fit:
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    levels = len(np.unique(x))
    if levels < 2:
        return Fit(
            *keys, line=None, note=f"not fitted: points at {levels} compute level(s), need 2"
        )
    line = fit_line(x, y)
    note = "" if line.dof > 0 else "no interval: as many parameters as points"
    return Fit(*keys, line=line, note=note)


def _log10(frame: pl.DataFrame, column: str) -> np.ndarray:
    values = frame[column].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(values), np.nan)


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].cast(pl.Float64).fill_null(float("nan")).to_numpy()


def fit_accuracy(results: pl.DataFrame, pgr: pl.DataFrame) -> list[Fit]:
    """The ceiling's accuracy against its compute, and each weak supervisor's students' against
    strong compute, per dataset (and method, for students)."""
    fits = []
    truth = results.filter(published_ceilings(results))
    for (dataset,), group in truth.group_by("dataset", maintain_order=True):
        keys = (dataset, None, "accuracy", X_COMPUTE, CEILING_GROUP)
        fits.append(
            _fit_group(keys, _log10(group, "effective_compute"), _values(group, "test_accuracy"))
        )
    students = pgr.group_by("dataset", "method", "weak_model", maintain_order=True)
    for (dataset, method, weak), group in students:
        keys = (dataset, method, "accuracy", X_STRONG, f"weak: {weak}")
        x, y = _log10(group, "strong_effective_compute"), _values(group, "student_accuracy")
        fits.append(_fit_group(keys, x, y))
    return _sorted(fits)


def fit_pgr(pgr: pl.DataFrame) -> list[Fit]:
    """PGR against strong compute per weak supervisor, and against the strong/weak compute
    ratio over all pairs, per dataset and method. Undefined PGRs are not points."""
    fits = []
    defined = pgr.filter(pl.col("pgr").is_not_null() & pl.col("pgr").is_not_nan())
    present = pgr.select("dataset", "method", "weak_model").unique()
    for dataset, method, weak in present.iter_rows():
        group = defined.filter(
            (pl.col("dataset") == dataset)
            & (pl.col("method") == method)
            & (pl.col("weak_model") == weak)
        )
        keys = (dataset, method, "pgr", X_STRONG, f"weak: {weak}")
        fits.append(
            _fit_group(keys, _log10(group, "strong_effective_compute"), _values(group, "pgr"))
        )
    for dataset, method in present.select("dataset", "method").unique().iter_rows():
        group = defined.filter((pl.col("dataset") == dataset) & (pl.col("method") == method))
        ratio = _log10(group, "strong_effective_compute") - _log10(group, "weak_effective_compute")
        fits.append(
            _fit_group((dataset, method, "pgr", X_RATIO, ALL_PAIRS), ratio, _values(group, "pgr"))
        )
    return _sorted(fits)


def _sorted(fits: list[Fit]) -> list[Fit]:
    return sorted(fits, key=lambda f: (f.dataset, f.response, f.method or "", f.predictor, f.group))


def _interval(line: LineFit | None, which: str, level: float) -> tuple[float | None, float | None]:
    if line is None or line.dof <= 0:
        return None, None
    low, high = line.slope_interval(level) if which == "slope" else line.intercept_interval(level)
    return low, high


def fits_table(fits: list[Fit], level: float = LEVEL) -> pl.DataFrame:
    """One row per fit: parameters with intervals, R², residual SD; unfitted groups have nulls."""
    rows = []
    for fit in fits:
        line = fit.line
        slope_low, slope_high = _interval(line, "slope", level)
        intercept_low, intercept_high = _interval(line, "intercept", level)
        rows.append(
            {
                "dataset": fit.dataset,
                "method": fit.method,
                "response": fit.response,
                "predictor": fit.predictor,
                "group": fit.group,
                "n_points": line.n_points if line else 0,
                "n_levels": line.n_levels if line else 0,
                "slope": line.slope if line else None,
                "slope_low": slope_low,
                "slope_high": slope_high,
                "intercept": line.intercept if line else None,
                "intercept_low": intercept_low,
                "intercept_high": intercept_high,
                "r2": _finite(line.r2) if line else None,
                "residual_sd": _finite(line.residual_sd) if line else None,
                "note": fit.note,
            }
        )
    return pl.DataFrame(rows, schema=_FIT_SCHEMA)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


_FIT_SCHEMA: dict[str, type[pl.DataType]] = {
    "dataset": pl.String,
    "method": pl.String,
    "response": pl.String,
    "predictor": pl.String,
    "group": pl.String,
    "n_points": pl.Int64,
    "n_levels": pl.Int64,
    "slope": pl.Float64,
    "slope_low": pl.Float64,
    "slope_high": pl.Float64,
    "intercept": pl.Float64,
    "intercept_low": pl.Float64,
    "intercept_high": pl.Float64,
    "r2": pl.Float64,
    "residual_sd": pl.Float64,
    "note": pl.String,
}


def extrapolate(fits: list[Fit], compute: float, level: float = LEVEL) -> pl.DataFrame:
    """Each compute-axis fit evaluated at `compute` FLOPs, with the confidence band of its line.

    The band assumes the straight line holds out there; how far out it reaches is in `note`.
    """
    if not compute > 0:
        raise ValueError(f"extrapolation compute must be a positive number of FLOPs, got {compute}")
    x = math.log10(compute)
    rows = []
    for fit in fits:
        if fit.line is None or fit.predictor == X_RATIO:
            continue
        value, low, high = fit.line.predict(x, level)
        rows.append(
            {
                "dataset": fit.dataset,
                "method": fit.method,
                "response": fit.response,
                "group": fit.group,
                "compute": compute,
                "predicted": value,
                "band_low": _finite(low),
                "band_high": _finite(high),
                "note": _reach_note(fit.line, x),
            }
        )
    schema = {
        "dataset": pl.String,
        "method": pl.String,
        "response": pl.String,
        "group": pl.String,
        "compute": pl.Float64,
        "predicted": pl.Float64,
        "band_low": pl.Float64,
        "band_high": pl.Float64,
        "note": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _reach_note(line: LineFit, x: float) -> str:
    notes = []
    if x > line.x_max:
        notes.append(f"{x - line.x_max:.1f} decades beyond the largest fitted compute")
    elif x < line.x_min:
        notes.append(f"{line.x_min - x:.1f} decades below the smallest fitted compute")
    if line.dof <= 0:
        notes.append("no band: as many parameters as points")
    return "; ".join(notes)

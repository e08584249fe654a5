"""The statistics behind every interval in a report: seed-mean draws, percentile intervals,
least-squares lines with t intervals, an exact paired sign-flip test, and the rule that says
when a weak-to-ceiling gap is too small to read.

Studies have few seeds (three is common), and a nonparametric bootstrap of three values can
never be wider than their range: simulated, a stratified bootstrap of the median across five
datasets covered a 95% target 76–80% of the time. Seed means are therefore drawn
parametrically, each dataset with its own seed-noise SD and its own t law (datasets differ in
size and difficulty, so their noise differs: one SD pooled over them under-covered to ~70% when
the median dataset was the noisy one). For one pair that is exactly the t interval; for the
median across datasets it covered 96–100% in the simulations of tests/analysis/test_intervals.py
(conservative when the datasets happen to share one noise level, the price of not assuming so).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
N_DRAWS = 4000
MAX_EXACT_FLIPS = 16  # 2^16 sign patterns: exact test; beyond that, Monte Carlo
N_RANDOM_FLIPS = 20_000
# A single seed's gap (ceiling − weak accuracy) below this is too small to read: two accuracy
# points, about the standard error of the difference of two accuracies near 0.75 measured on
# 1000 test examples each (√(2·0.75·0.25/1000) ≈ 0.019), so a smaller gap may be noise alone.
MIN_GAP = 0.02


def keyed_rng(seed: int, key: Sequence[object]) -> np.random.Generator:
    """A generator per row of a table, so one row's interval does not depend on the others."""
    return np.random.default_rng([seed, zlib.crc32("\x1f".join(map(str, key)).encode())])


def dataset_mean_draws(
    groups: list[np.ndarray], rng: np.random.Generator, n_draws: int
) -> tuple[np.ndarray, int] | None:
    """Independent draws of each group's mean, shape (groups, n_draws), and how many groups
    borrowed their noise; None when no group has two values.

    Each group with n ≥ 2 values is drawn as mean + (sd/√n)·t(n−1) with its own sd: exactly
    its t interval. A group with one value has no noise estimate of its own; it borrows the
    largest sd among the other groups (with that group's t law), so an aggregate never looks
    surer than the noisiest dataset that can be measured.
    """
    spreads = [(float(np.std(g, ddof=1)), len(g) - 1) for g in groups if len(g) >= 2]
    if not spreads:
        return None
    widest = max(spreads)
    draws, borrowed = [], 0
    for values in groups:
        sd, dof = (float(np.std(values, ddof=1)), len(values) - 1) if len(values) >= 2 else widest
        borrowed += len(values) < 2
        noise = sd / math.sqrt(len(values)) * rng.standard_t(dof, size=n_draws)
        draws.append(float(np.mean(values)) + noise)
    return np.array(draws), borrowed


def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """The interval the seed-mean draws converge to, in closed form; None under two values."""
    n = len(values)
    if n < 2:
        return None
    half = float(sps.t.ppf(1.0 - (1.0 - level) / 2.0, n - 1)) * float(np.std(values, ddof=1))
    mean = float(np.mean(values))
    return mean - half / math.sqrt(n), mean + half / math.sqrt(n)


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)


def smallest_sign_flip_pvalue(n: int) -> float:
    """The smallest two-sided p an exact sign-flip test of n units can give: 2 of 2^n sign
    patterns (all +, all −) are as extreme as n differences of one sign. 3 units: 0.25."""
    return min(1.0, 2.0 / 2.0**n)


def gap_too_small(gaps: np.ndarray, level: float = LEVEL, min_gap: float = MIN_GAP) -> bool:
    """Whether a pair's gap (ceiling − weak accuracy, one value per seed) is within its own
    noise, so its PGR — a ratio over that gap — cannot be read.

    Two or more seeds: the gap's t interval over seeds reaches 0 (its low end is ≤ 0). One
    seed: there is no noise estimate, so a gap below `min_gap` counts as too small. No seeds:
    nothing to judge (False; the PGR is missing anyway).
    """
    if len(gaps) == 0:
        return False
    interval = t_interval(gaps, level)
    if interval is None:
        return float(gaps[0]) < min_gap
    return interval[0] <= 0.0


def sign_flip_pvalue(diffs: np.ndarray, rng: np.random.Generator) -> float:
    """Two-sided paired test of mean difference 0: flip the signs of the differences.

    Exact (every sign pattern) up to MAX_EXACT_FLIPS differences; Monte Carlo above, counting
    the observed pattern so the p-value is never 0.
    """
    n = len(diffs)
    if n == 0:
        return float("nan")
    observed = abs(float(np.sum(diffs)))
    tolerance = 1e-12 * max(1.0, observed)
    if n <= MAX_EXACT_FLIPS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        sums = np.abs(signs @ diffs)
        return float(np.mean(sums >= observed - tolerance))
    signs = rng.choice((1.0, -1.0), size=(N_RANDOM_FLIPS, n))
    hits = int(np.sum(np.abs(signs @ diffs) >= observed - tolerance))
    return (hits + 1) / (N_RANDOM_FLIPS + 1)


@dataclass(frozen=True)
class LineFit:
    """y = intercept + slope·x by least squares, with what a t interval or a band needs."""

    n_points: int
    n_levels: int  # distinct x values
    x_min: float
    x_max: float
    intercept: float
    slope: float
    x_mean: float
    sxx: float
    residual_sd: float  # NaN with no residual degrees of freedom
    r2: float

    @property
    def dof(self) -> int:
        return self.n_points - 2

    def _t(self, level: float) -> float:
        return float(sps.t.ppf(1.0 - (1.0 - level) / 2.0, self.dof)) if self.dof > 0 else math.nan

    def slope_interval(self, level: float = LEVEL) -> tuple[float, float]:
        half = self._t(level) * self.residual_sd / math.sqrt(self.sxx)
        return self.slope - half, self.slope + half

    def intercept_interval(self, level: float = LEVEL) -> tuple[float, float]:
        se = self.residual_sd * math.sqrt(1.0 / self.n_points + self.x_mean**2 / self.sxx)
        half = self._t(level) * se
        return self.intercept - half, self.intercept + half

    def predict(self, x: float, level: float = LEVEL) -> tuple[float, float, float]:
        """The fitted line at x with its confidence band (of the line, not of a new run)."""
        value = self.intercept + self.slope * x
        se = self.residual_sd * math.sqrt(1.0 / self.n_points + (x - self.x_mean) ** 2 / self.sxx)
        half = self._t(level) * se
        return value, value - half, value + half


def fit_line(x: np.ndarray, y: np.ndarray) -> LineFit:
    """Ordinary least squares; needs two distinct x values."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    levels = len(np.unique(x))
    if levels < 2:
        raise ValueError("a line needs points at two or more x values")
    x_mean, y_mean = float(x.mean()), float(y.mean())
    sxx = float(np.sum((x - x_mean) ** 2))
    slope = float(np.sum((x - x_mean) * (y - y_mean)) / sxx)
    intercept = y_mean - slope * x_mean
    residuals = y - (intercept + slope * x)
    ss_res = float(np.sum(residuals**2))
    ss_tot = float(np.sum((y - y_mean) ** 2))
    dof = len(x) - 2
    return LineFit(
        n_points=len(x),
        n_levels=levels,
        x_min=float(x.min()),
        x_max=float(x.max()),
        intercept=intercept,
        slope=slope,
        x_mean=x_mean,
        sxx=sxx,
        residual_sd=math.sqrt(ss_res / dof) if dof > 0 else math.nan,
        r2=1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan,
    )

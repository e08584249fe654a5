"""The interval and test machinery against hand-computed values and simulated coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.stats import (
    bootstrap_mean_interval,
    fit_line,
    percentile_interval,
    pooled_mean_draws,
    sign_flip_pvalue,
    t_interval,
)


def test_t_interval_by_hand():
    # mean 0.6, sd sqrt(0.14 / 2) = 0.26458, t(2, 0.975) = 4.302653
    low, high = t_interval(np.array([0.4, 0.5, 0.9]))
    half = 4.302653 * math.sqrt(0.07) / math.sqrt(3)
    assert (low, high) == pytest.approx((0.6 - half, 0.6 + half), abs=1e-6)
    assert t_interval(np.array([0.7])) is None


def test_pooled_draws_of_one_group_converge_to_the_t_interval():
    values = np.array([0.4, 0.5, 0.9, 0.65])
    (draws,) = pooled_mean_draws([values], np.random.default_rng(0), 400_000)
    assert percentile_interval(draws) == pytest.approx(t_interval(values), abs=0.004)
    assert pooled_mean_draws([values[:1], values[1:2]], np.random.default_rng(0), 10) is None


def test_pooled_draws_borrow_spread_for_a_one_seed_group():
    draws = pooled_mean_draws(
        [np.array([0.2, 0.4]), np.array([0.9])], np.random.default_rng(0), 50_000
    )
    assert draws.shape == (2, 50_000)
    assert np.median(draws, axis=1) == pytest.approx([0.3, 0.9], abs=0.01)  # t(1): no mean
    # pooled SD 0.1414 with one dof: the single seed's mean is twice as uncertain in variance
    assert np.median(np.abs(draws[1] - 0.9)) > np.median(np.abs(draws[0] - 0.3))


def test_bootstrap_mean_interval_covers_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(600):
        values = rng.normal(0.1, 0.05, size=9)
        low, high = bootstrap_mean_interval(values, rng, 2000)
        hits += low <= 0.1 <= high
    assert 0.91 <= hits / 600 <= 0.98


def test_sign_flip_pvalue_exact_by_hand():
    # sums of ±1 ±2 ±3: only +++ and --- reach |6|, so p = 2/8
    assert sign_flip_pvalue(np.array([1.0, 2.0, 3.0]), np.random.default_rng(0)) == 0.25
    # |±1 ±1| >= 0 always
    assert sign_flip_pvalue(np.array([1.0, -1.0]), np.random.default_rng(0)) == 1.0


def test_sign_flip_pvalue_monte_carlo_rejects_a_clear_shift_and_keeps_size_under_null():
    rng = np.random.default_rng(2)
    assert sign_flip_pvalue(np.full(30, 0.2) + rng.normal(0, 0.01, 30), rng) < 0.001
    null_p = [sign_flip_pvalue(rng.normal(0, 1, 8), rng) for _ in range(400)]
    assert np.mean(np.array(null_p) <= 0.05) <= 0.08


def test_fit_line_recovers_slope_and_its_interval_covers():
    rng = np.random.default_rng(3)
    x = np.repeat(np.arange(18.0, 23.0), 3)  # five decades, three seeds each
    hits, band_hits = 0, 0
    for _ in range(800):
        y = 0.2 + 0.05 * x + rng.normal(0, 0.02, len(x))
        line = fit_line(x, y)
        low, high = line.slope_interval()
        hits += low <= 0.05 <= high
        _, band_low, band_high = line.predict(25.0)  # two decades out
        band_hits += band_low <= 0.2 + 0.05 * 25.0 <= band_high
    assert 0.92 <= hits / 800 <= 0.98
    assert 0.92 <= band_hits / 800 <= 0.98
    exact = fit_line(np.array([1.0, 2.0, 3.0]), np.array([3.0, 5.0, 7.0]))
    assert (exact.slope, exact.intercept, exact.r2) == pytest.approx((2.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="two or more x values"):
        fit_line(np.array([1.0, 1.0]), np.array([0.0, 1.0]))


def test_a_two_point_line_has_no_interval():
    line = fit_line(np.array([1.0, 2.0]), np.array([0.5, 0.7]))
    assert line.dof == 0 and all(math.isnan(v) for v in line.slope_interval())

"""The interval and test machinery against hand-computed values and simulated coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.stats import (
    MIN_GAP,
    dataset_mean_draws,
    fit_line,
    gap_too_small,
    percentile_interval,
    sign_flip_pvalue,
    smallest_sign_flip_pvalue,
    t_interval,
)


def test_t_interval_by_hand():
    # mean 0.6, sd sqrt(0.14 / 2) = 0.26458, t(2, 0.975) = 4.302653
    low, high = t_interval(np.array([0.4, 0.5, 0.9]))
    half = 4.302653 * math.sqrt(0.07) / math.sqrt(3)
    assert (low, high) == pytest.approx((0.6 - half, 0.6 + half), abs=1e-6)
    assert t_interval(np.array([0.7])) is None


def test_draws_of_one_group_converge_to_its_t_interval():
    values = np.array([0.4, 0.5, 0.9, 0.65])
    (draws,), borrowed = dataset_mean_draws([values], np.random.default_rng(0), 400_000)
    assert percentile_interval(draws) == pytest.approx(t_interval(values), abs=0.004)
    assert borrowed == 0
    assert dataset_mean_draws([values[:1], values[1:2]], np.random.default_rng(0), 10) is None


def test_each_group_keeps_its_own_noise():
    quiet, noisy = np.array([0.50, 0.51, 0.49]), np.array([0.2, 0.8, 0.5])
    draws, _ = dataset_mean_draws([quiet, noisy], np.random.default_rng(0), 400_000)
    # each group's draws give its own t interval, not one with the SD pooled over both
    assert percentile_interval(draws[0]) == pytest.approx(t_interval(quiet), abs=0.002)
    assert percentile_interval(draws[1]) == pytest.approx(t_interval(noisy), abs=0.02)


def test_a_one_seed_group_borrows_the_noisiest_other_groups_spread():
    groups = [np.array([0.2, 0.4]), np.array([0.5, 0.52, 0.54]), np.array([0.9])]
    draws, borrowed = dataset_mean_draws(groups, np.random.default_rng(0), 200_000)
    assert draws.shape == (3, 200_000) and borrowed == 1
    assert np.median(draws, axis=1) == pytest.approx([0.3, 0.52, 0.9], abs=0.01)
    # the single seed is drawn with the first group's SD (0.1414) and t(1), over √1
    assert np.median(np.abs(draws[2] - 0.9)) == pytest.approx(0.1414, rel=0.03)


def test_gap_too_small_rule():
    # three seeds: gap 0.02 ± 0.01 has a t interval from about -0.005 to 0.045: too small
    assert gap_too_small(np.array([0.01, 0.02, 0.03]))
    # a steady gap well above its noise is readable however small
    assert not gap_too_small(np.array([0.010, 0.011, 0.012]))
    assert gap_too_small(np.array([0.10, -0.02, 0.05]))  # a seed with no gap at all
    # one seed: no noise estimate, so the stated minimum decides
    assert gap_too_small(np.array([MIN_GAP - 0.001]))
    assert not gap_too_small(np.array([MIN_GAP + 0.001]))
    assert not gap_too_small(np.array([]))


def test_smallest_sign_flip_pvalue_is_what_the_test_can_reach():
    for n in range(1, 8):
        diffs = np.arange(1.0, n + 1.0)  # all one sign: the most extreme data there is
        assert sign_flip_pvalue(diffs, np.random.default_rng(0)) == smallest_sign_flip_pvalue(n)
    assert smallest_sign_flip_pvalue(3) == 0.25 and smallest_sign_flip_pvalue(6) < 0.05


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

"""Scaling fits recover known lines from noisy synthetic studies; method comparisons pair runs."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from analysis.compare import compare_methods
from analysis.fits import (
    ALL_PAIRS,
    CEILING_GROUP,
    X_RATIO,
    X_STRONG,
    extrapolate,
    fit_accuracy,
    fit_pgr,
    fits_table,
)
from analysis.pgr import compute_pgr
from analysis.schema import PGR_SCHEMA
from analysis.stats import t_interval

LADDER = {"m1": 1e18, "m2": 1e19, "m3": 1e20, "m4": 1e21, "m5": 1e22}


def _synthetic_pgr(rng: np.random.Generator, noise: float, seeds: int = 4) -> pl.DataFrame:
    """PGR = 0.1 + 0.15·log10(strong/weak) + noise, for every weak < strong of the ladder."""
    names = list(LADDER)
    rows = []
    for i, weak in enumerate(names):
        for strong in names[i + 1 :]:
            ratio = math.log10(LADDER[strong] / LADDER[weak])
            for seed in range(seeds):
                pgr = 0.1 + 0.15 * ratio + rng.normal(0, noise)
                rows.append(
                    {
                        "dataset": "toy",
                        "seed": seed,
                        "weak_model": weak,
                        "strong_model": strong,
                        "method": "xent",
                        "weak_accuracy": 0.6,
                        "ceiling_accuracy": 0.8,
                        "student_accuracy": 0.6 + 0.2 * pgr,
                        "pgr": pgr,
                        "weak_effective_compute": LADDER[weak],
                        "strong_effective_compute": LADDER[strong],
                    }
                )
    return pl.DataFrame(rows, schema=PGR_SCHEMA)


def test_pgr_fits_recover_the_slope_with_intervals_that_cover():
    rng = np.random.default_rng(5)
    hits, n = 0, 500
    for _ in range(n):
        table = fits_table(fit_pgr(_synthetic_pgr(rng, noise=0.05)))
        ratio = table.filter(pl.col("predictor") == X_RATIO).row(0, named=True)
        hits += ratio["slope_low"] <= 0.15 <= ratio["slope_high"]
    assert 0.92 <= hits / n <= 0.98
    assert ratio["group"] == ALL_PAIRS and ratio["n_points"] == 10 * 4
    assert ratio["slope"] == pytest.approx(0.15, abs=0.03)
    assert ratio["intercept"] == pytest.approx(0.1, abs=0.08)
    assert ratio["r2"] > 0.8


def test_pgr_against_strong_compute_per_weak_supervisor():
    table = fits_table(fit_pgr(_synthetic_pgr(np.random.default_rng(1), noise=0.0)))
    strong = table.filter(pl.col("predictor") == X_STRONG)
    by_group = {row["group"]: row for row in strong.iter_rows(named=True)}
    # with the weak model fixed, PGR rises 0.15 per decade of strong compute, exactly
    assert by_group["weak: m1"]["slope"] == pytest.approx(0.15)
    assert by_group["weak: m1"]["residual_sd"] == pytest.approx(0.0, abs=1e-9)
    # m4 supervises only m5: one compute level, so it is listed as not fitted, not dropped
    assert by_group["weak: m4"]["slope"] is None
    assert "1 compute level" in by_group["weak: m4"]["note"]
    assert "weak: m5" not in by_group  # never a weak supervisor


def test_accuracy_fits_include_the_ceiling_and_extrapolate_with_a_band(rows):
    data = [
        rows.truth(model, acc, seed=seed)
        for seed, shift in enumerate((0.0, 0.01, -0.01))
        for model, acc in {
            "small": 0.6 + shift,
            "medium": 0.7 + shift,
            "large": 0.8 + shift,
        }.items()
    ]
    results = rows.table(data)
    fits = fit_accuracy(results, compute_pgr(results))
    ceiling = fits_table(fits).filter(pl.col("group") == CEILING_GROUP).row(0, named=True)
    assert ceiling["slope"] == pytest.approx(0.1)  # +0.1 per decade in the fixture ladder
    assert ceiling["slope_low"] < 0.1 < ceiling["slope_high"]
    (pred,) = extrapolate(fits, 1e19).iter_rows(named=True)
    assert pred["predicted"] == pytest.approx(1.0)
    assert pred["band_low"] < 1.0 < pred["band_high"]
    assert pred["note"] == "2.0 decades beyond the largest fitted compute"
    with pytest.raises(ValueError, match="positive"):
        extrapolate(fits, -1.0)


def _pair_rows(
    method: str,
    pgrs: list[float | None],
    *,
    dataset: str = "toy",
    weak: str = "small",
    strong: str = "large",
    seeds: list[int] | None = None,
) -> list[dict[str, object]]:
    return [
        {
            "dataset": dataset,
            "seed": seed,
            "weak_model": weak,
            "strong_model": strong,
            "method": method,
            "weak_accuracy": 0.6,
            "ceiling_accuracy": 0.8,
            "student_accuracy": None if pgr is None else 0.6 + 0.2 * pgr,
            "pgr": pgr,
            "weak_effective_compute": 1e15,
            "strong_effective_compute": 1e17,
        }
        for seed, pgr in zip(seeds or range(len(pgrs)), pgrs, strict=True)
    ]


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PGR_SCHEMA)


def test_method_comparison_pairs_runs_and_withholds_a_test_it_cannot_pass():
    pgr = _frame(
        _pair_rows("xent", [0.5, 0.4, 0.6, 0.55]) + _pair_rows("logconf", [0.7, 0.6, 0.9, None])
    )
    table = compare_methods(pgr)
    row = table.filter(pl.col("metric") == "pgr").row(0, named=True)
    assert (row["method"], row["reference"]) == ("logconf", "xent")
    # seeds 0-2 pair up: differences 0.2, 0.2, 0.3; seed 3 has no logconf value
    assert (row["n_units"], row["n_runs"]) == (3, 3)
    assert row["mean_difference"] == pytest.approx(0.7 / 3)
    assert (row["wins"], row["losses"], row["ties"]) == (3, 0, 0)
    # all three positive is as extreme as three units get: p = 2/8 = 0.25 at best, no test
    assert row["p_value"] is None
    assert "3 independent units" in row["note"] and "below 0.25" in row["note"]
    assert row["diff_low"] < 0.7 / 3 < row["diff_high"]
    assert row["diff_low"] < 0.2  # a t interval, not a bootstrap stuck inside the range
    assert "1 shared run(s) undefined" in row["note"]
    accuracy = table.filter(pl.col("metric") == "student_accuracy").row(0, named=True)
    assert accuracy["mean_difference"] == pytest.approx(0.2 * 0.7 / 3)


def _clustered(n_seeds: int, lifts: dict[tuple[str, str], float]) -> pl.DataFrame:
    """Three weak → strong pairs per seed, one dataset: logconf = xent + lift + seed shift."""
    rows = []
    for (weak, strong), lift in lifts.items():
        seeds = list(range(n_seeds))
        rows += _pair_rows("xent", [0.5] * n_seeds, weak=weak, strong=strong, seeds=seeds)
        rows += _pair_rows(
            "logconf",
            [0.5 + lift + 0.01 * (seed % 3 - 1) for seed in seeds],
            weak=weak,
            strong=strong,
            seeds=seeds,
        )
    return _frame(rows)


LIFTS = {("small", "medium"): 0.1, ("small", "large"): 0.2, ("medium", "large"): -0.05}


def test_runs_sharing_a_dataset_and_seed_are_one_unit():
    """Nine paired runs from three seeds are three independent units, not nine."""
    row = compare_methods(_clustered(3, LIFTS)).filter(pl.col("metric") == "pgr").row(0, named=True)
    assert (row["n_units"], row["n_runs"]) == (3, 9)
    # each unit is the mean over its three pairs: 0.25/3 + the seed's shift (-0.01, 0, +0.01)
    assert row["mean_difference"] == pytest.approx(0.25 / 3)
    assert (row["wins"], row["losses"]) == (3, 0)  # units, though one pair in each loses
    assert row["p_value"] is None
    units = np.array([0.25 / 3 - 0.01, 0.25 / 3, 0.25 / 3 + 0.01])
    low, high = t_interval(units)
    assert (row["diff_low"], row["diff_high"]) == pytest.approx((low, high))


def test_enough_units_get_the_exact_sign_flip_test_over_unit_means():
    row = compare_methods(_clustered(6, LIFTS)).filter(pl.col("metric") == "pgr").row(0, named=True)
    assert (row["n_units"], row["n_runs"]) == (6, 18)
    assert row["p_value"] == pytest.approx(2 / 2**6)  # every unit positive: the smallest p
    assert row["note"] == ""


def test_datasets_are_separate_units():
    rows = _pair_rows("xent", [0.5, 0.5], dataset="a") + _pair_rows(
        "logconf", [0.6, 0.7], dataset="a"
    )
    rows += _pair_rows("xent", [0.5, 0.5], dataset="b") + _pair_rows(
        "logconf", [0.4, 0.5], dataset="b"
    )
    row = compare_methods(_frame(rows)).filter(pl.col("metric") == "pgr").row(0, named=True)
    assert (row["n_units"], row["n_runs"], row["wins"], row["losses"], row["ties"]) == (
        4,
        4,
        2,
        1,
        1,
    )
    assert row["mean_difference"] == pytest.approx((0.1 + 0.2 - 0.1 + 0.0) / 4)


def test_method_comparison_reference_must_exist_and_one_unit_gets_no_test():
    pgr = _frame(_pair_rows("xent", [0.5]) + _pair_rows("logconf", [0.7]))
    with pytest.raises(ValueError, match="'bootstrap' is not in the results"):
        compare_methods(pgr, "bootstrap")
    row = compare_methods(pgr, "logconf").row(0, named=True)
    assert row["method"] == "xent" and row["p_value"] is None and row["diff_low"] is None
    assert row["note"] == "one independent unit (dataset × seed): no interval or test"


def test_a_comparison_does_not_change_when_another_method_joins():
    base = _pair_rows("xent", [0.5, 0.4, 0.6, 0.55]) + _pair_rows("logconf", [0.7, 0.6, 0.9, 0.5])
    more = base + _pair_rows("gce", [0.6, 0.5, 0.7, 0.6])
    alone = compare_methods(_frame(base))
    joined = compare_methods(_frame(more))
    assert alone.equals(joined.filter(pl.col("method") == "logconf"))

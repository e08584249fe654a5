"""PGR per pair with intervals, the cross-dataset aggregate, and how undefined cases show."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from analysis.intervals import ONE_SEED, aggregate_pgr, pgr_intervals
from analysis.pgr import PGR_SCHEMA, REASON_NO_GAP


def _pgr(rows: list[tuple[str, int, str, str, str, float | None]]) -> pl.DataFrame:
    """(dataset, seed, weak, strong, method, pgr) rows; accuracies are filled to match."""
    data = []
    for dataset, seed, weak, strong, method, pgr in rows:
        ceiling = 0.8 if pgr is not None else 0.6
        data.append(
            {
                "dataset": dataset,
                "seed": seed,
                "weak_model": weak,
                "strong_model": strong,
                "method": method,
                "weak_accuracy": 0.6,
                "ceiling_accuracy": ceiling,
                "student_accuracy": 0.6 + 0.2 * (pgr or 0.0),
                "pgr": pgr,
                "weak_effective_compute": 1e15,
                "strong_effective_compute": 1e17 if strong == "large" else 1e16,
            }
        )
    return pl.DataFrame(data, schema=PGR_SCHEMA)


def test_pair_mean_and_t_interval_by_hand():
    pgr = _pgr([("toy", s, "small", "large", "xent", v) for s, v in enumerate((0.4, 0.5, 0.9))])
    (row,) = pgr_intervals(pgr).iter_rows(named=True)
    half = 4.302653 * math.sqrt(0.07) / math.sqrt(3)
    assert row["pgr"] == pytest.approx(0.6)
    assert (row["pgr_low"], row["pgr_high"]) == pytest.approx((0.6 - half, 0.6 + half), abs=1e-6)
    assert (row["n_seeds"], row["n_defined"], row["note"]) == (3, 3, "")
    assert row["student_accuracy"] == pytest.approx(0.72)


def test_undefined_seeds_are_left_out_and_named():
    pgr = _pgr(
        [
            ("toy", 0, "small", "large", "xent", 0.5),
            ("toy", 1, "small", "large", "xent", None),  # ceiling <= weak
            ("toy", 2, "small", "large", "xent", 0.7),
            ("toy", 0, "small", "medium", "xent", 0.3),
            ("toy", 1, "small", "medium", "xent", None),
        ]
    )
    rows = {r["strong_model"]: r for r in pgr_intervals(pgr).iter_rows(named=True)}
    large, medium = rows["large"], rows["medium"]
    assert large["pgr"] == pytest.approx(0.6) and large["n_defined"] == 2
    assert large["note"].startswith(f"PGR undefined in 1 of 3 seeds ({REASON_NO_GAP}); ")
    assert large["gap_too_small"]  # gaps 0.2, 0, 0.2: the t interval reaches 0
    assert medium["pgr"] == pytest.approx(0.3) and medium["pgr_low"] is None
    assert ONE_SEED in medium["note"] and "1 of 2 seeds" in medium["note"]


def test_a_pair_undefined_everywhere_has_no_value():
    pgr = _pgr([("toy", s, "small", "large", "xent", None) for s in range(2)])
    (row,) = pgr_intervals(pgr).iter_rows(named=True)
    assert row["pgr"] is None and row["n_defined"] == 0
    assert "2 of 2 seeds" in row["note"]


def test_pair_intervals_cover_the_truth_at_about_the_nominal_rate():
    """1000 pairs, three seeds each, true PGR 0.5 with normal seed noise."""
    rng = np.random.default_rng(0)
    rows = [
        ("toy", seed, f"weak{i}", "large", "xent", float(0.5 + rng.normal(0, 0.15)))
        for i in range(1000)
        for seed in range(3)
    ]
    table = pgr_intervals(_pgr(rows))
    covered = table.select(((pl.col("pgr_low") <= 0.5) & (pl.col("pgr_high") >= 0.5)).mean())
    assert 0.93 <= covered.item() <= 0.97


def test_aggregate_is_the_median_of_dataset_means():
    rows = []
    for dataset, values in {"a": (0.1, 0.3), "b": (0.5, 0.7), "c": (0.9, 1.1)}.items():
        rows += [(dataset, s, "small", "large", "xent", v) for s, v in enumerate(values)]
    (row,) = aggregate_pgr(_pgr(rows)).iter_rows(named=True)
    assert row["pgr_median"] == pytest.approx(0.6)
    assert row["pgr_low"] < 0.6 < row["pgr_high"]
    assert (row["n_datasets"], row["n_defined_datasets"], row["note"]) == (3, 3, "")


def test_aggregate_lists_undefined_datasets_and_borrows_spread_for_one_seed_ones():
    rows = [("a", 0, "small", "large", "xent", 0.4), ("a", 1, "small", "large", "xent", 0.6)]
    rows += [("b", 0, "small", "large", "xent", 0.8)]
    rows += [("c", s, "small", "large", "xent", None) for s in range(2)]  # ceiling == weak
    (row,) = aggregate_pgr(_pgr(rows)).iter_rows(named=True)
    assert row["pgr_median"] == pytest.approx(0.65) and row["pgr_low"] < 0.65 < row["pgr_high"]
    assert row["n_datasets"] == 3 and row["n_defined_datasets"] == 2
    assert row["n_gap_too_small"] == 1  # c: no gap in either seed
    assert row["note"] == (
        "PGR undefined on 1 dataset(s); 1 dataset(s) with one seed: seed noise borrowed from "
        "the noisiest other dataset; gap too small to read on 1 dataset(s)"
    )


def test_aggregate_of_single_seeds_has_no_interval():
    rows = [("a", 0, "small", "large", "xent", 0.4), ("b", 0, "small", "large", "xent", 0.8)]
    (row,) = aggregate_pgr(_pgr(rows)).iter_rows(named=True)
    assert row["pgr_median"] == pytest.approx(0.6) and row["pgr_low"] is None
    assert row["note"] == "one seed per dataset: no interval"


def _aggregate_coverage(sds: dict[str, float], seeds: int, replicates: int, rng_seed: int) -> float:
    """Coverage of the true median (0.5) of five dataset PGRs 0.2 … 0.8, each dataset with
    its own seed-noise SD, over `replicates` simulated studies."""
    rng = np.random.default_rng(rng_seed)
    truths = {"a": 0.2, "b": 0.35, "c": 0.5, "d": 0.65, "e": 0.8}
    rows = [
        (dataset, seed, f"weak{i}", "large", "xent", float(truth + rng.normal(0, sds[dataset])))
        for i in range(replicates)
        for dataset, truth in truths.items()
        for seed in range(seeds)
    ]
    table = aggregate_pgr(_pgr(rows), n_draws=2000)
    return table.select(((pl.col("pgr_low") <= 0.5) & (pl.col("pgr_high") >= 0.5)).mean()).item()


def test_aggregate_intervals_cover_when_datasets_share_one_noise_level():
    """Five datasets × three seeds, SD 0.1 everywhere: the case a pooled SD was built for.
    Each dataset's own t law is conservative here (it ignores that the SDs agree)."""
    covered = _aggregate_coverage(dict.fromkeys("abcde", 0.1), seeds=3, replicates=300, rng_seed=1)
    assert 0.93 <= covered <= 1.0


def test_aggregate_intervals_cover_when_the_median_dataset_is_the_noisy_one():
    """The median dataset has seed SD 0.3, the others 0.02: one SD pooled over datasets
    (≈0.14) makes the interval too narrow where it matters and covered ~70%."""
    sds = {"a": 0.02, "b": 0.02, "c": 0.3, "d": 0.02, "e": 0.02}
    covered = _aggregate_coverage(sds, seeds=3, replicates=300, rng_seed=2)
    assert 0.92 <= covered <= 0.985


def test_aggregate_interval_is_reproducible_and_independent_of_other_pairs():
    rows = [
        (d, s, "small", "large", "xent", 0.3 + 0.1 * s + 0.05 * i)
        for i, d in enumerate("abc")
        for s in range(3)
    ]
    alone = aggregate_pgr(_pgr(rows))
    more = aggregate_pgr(
        _pgr(rows + [("a", s, "small", "large", "logconf", 0.9) for s in range(3)])
    )
    assert alone.row(0) == more.filter(pl.col("method") == "xent").row(0)

"""PGR against hand-computed examples: defined, undefined with a reason, and aggregated."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.intervals import GAP_TOO_SMALL, pgr_intervals
from analysis.pgr import compute_pgr, undefined_pgr_rows
from analysis.schema import PGR_SCHEMA, RESULT_COLUMNS


def _one(pgr: pl.DataFrame) -> dict:
    assert pgr.height == 1
    return pgr.row(0, named=True)


def test_pgr_is_the_share_of_the_gap_the_student_closes(rows):
    results = rows.table(
        [rows.truth("small", 0.6), rows.truth("large", 0.8), rows.student("small", "large", 0.7)]
    )
    pgr = compute_pgr(results)
    assert pgr.columns == list(PGR_SCHEMA)
    row = _one(pgr)
    assert row["pgr"] == pytest.approx(0.5)
    assert (row["weak_accuracy"], row["ceiling_accuracy"], row["student_accuracy"]) == (
        0.6,
        0.8,
        0.7,
    )
    assert (row["weak_model"], row["strong_model"], row["method"]) == ("small", "large", "xent")
    assert row["weak_effective_compute"] == rows.compute["small"]
    assert row["strong_effective_compute"] == rows.compute["large"]
    assert undefined_pgr_rows(pgr).height == 0


@pytest.mark.parametrize(("student_acc", "expected"), [(0.5, -0.5), (0.9, 1.5), (0.8, 1.0)])
def test_pgr_is_not_clipped(rows, student_acc, expected):
    results = rows.table(
        [
            rows.truth("small", 0.6),
            rows.truth("large", 0.8),
            rows.student("small", "large", student_acc),
        ]
    )
    assert _one(compute_pgr(results))["pgr"] == pytest.approx(expected)


@pytest.mark.parametrize("ceiling", [0.6, 0.55], ids=["ceiling-equals-weak", "ceiling-below-weak"])
def test_no_positive_gap_gives_null_with_a_reason(rows, ceiling):
    results = rows.table(
        [
            rows.truth("small", 0.6),
            rows.truth("large", ceiling),
            rows.student("small", "large", 0.7),
        ]
    )
    pgr = compute_pgr(results)
    assert _one(pgr)["pgr"] is None
    undefined = undefined_pgr_rows(pgr)
    assert undefined["reason"].to_list() == ["ceiling <= weak"]
    assert undefined.drop("reason").equals(pgr)


@pytest.mark.parametrize("present", ["small", "large"])
def test_missing_ground_truth_gives_null_with_a_reason(rows, present):
    results = rows.table([rows.truth(present, 0.6), rows.student("small", "large", 0.7)])
    pgr = compute_pgr(results)
    row = _one(pgr)
    assert row["pgr"] is None
    missing = "ceiling_accuracy" if present == "small" else "weak_accuracy"
    assert row[missing] is None
    assert undefined_pgr_rows(pgr)["reason"].to_list() == ["missing ground truth"]


def test_ground_truth_of_another_seed_or_dataset_does_not_count(rows):
    results = rows.table(
        [
            rows.truth("small", 0.6, seed=1),
            rows.truth("large", 0.8, seed=1),
            rows.truth("small", 0.6, dataset="other"),
            rows.truth("large", 0.8, dataset="other"),
            rows.student("small", "large", 0.7, seed=0),
        ]
    )
    assert _one(compute_pgr(results))["pgr"] is None


def test_label_rows_are_ignored(rows):
    results = rows.table(
        [
            rows.truth("small", 0.6),
            rows.truth("large", 0.8),
            rows.label("small", 0.1),
            rows.label("large", 0.99),
            rows.student("small", "large", 0.7),
        ]
    )
    pgr = compute_pgr(results)
    assert _one(pgr)["pgr"] == pytest.approx(0.5)
    assert _one(pgr)["weak_accuracy"] == 0.6


def test_ground_truth_method_may_be_null_or_named(rows):
    results = rows.table(
        [
            rows.truth("small", 0.6, method="ground_truth"),
            rows.truth("large", 0.8),
            rows.student("small", "large", 0.7),
        ]
    )
    assert _one(compute_pgr(results))["pgr"] == pytest.approx(0.5)


def test_weak_compute_falls_back_to_the_weak_ground_truth_run(rows):
    student = rows.student("small", "large", 0.7) | {"weak_effective_compute": None}
    results = rows.table([rows.truth("small", 0.6), rows.truth("large", 0.8), student])
    assert _one(compute_pgr(results))["weak_effective_compute"] == rows.compute["small"]


def _ladder(rows) -> pl.DataFrame:
    """Two seeds, two methods, three models; seed 1's small model has no gap below medium."""
    truths = {
        0: {"small": 0.6, "medium": 0.7, "large": 0.8},
        1: {"small": 0.7, "medium": 0.7, "large": 0.9},
    }
    students = {
        ("small", "medium"): (0.65, 0.75),
        ("small", "large"): (0.7, 0.8),
        ("medium", "large"): (0.75, 0.8),
    }
    data = [
        rows.truth(m, acc, seed=seed) for seed, accs in truths.items() for m, acc in accs.items()
    ]
    data += [rows.label("small", 0.6, seed=seed) for seed in truths]
    for (weak, strong), (xent, logconf) in students.items():
        for seed in truths:
            data.append(rows.student(weak, strong, xent, seed=seed, method="xent"))
            data.append(rows.student(weak, strong, logconf, seed=seed, method="logconf"))
    return rows.table(data[::-1])  # reversed, so order must come from the code


def _pair(frame: pl.DataFrame, weak: str, strong: str, method: str) -> dict:
    return _one(
        frame.filter(
            (pl.col("weak_model") == weak)
            & (pl.col("strong_model") == strong)
            & (pl.col("method") == method)
        )
    )


def test_seeds_and_methods_are_matched_and_aggregated(rows):
    pgr = compute_pgr(_ladder(rows))
    assert pgr.height == 3 * 2 * 2

    def value(weak, strong, method, seed):
        return pgr.filter(
            (pl.col("weak_model") == weak)
            & (pl.col("strong_model") == strong)
            & (pl.col("method") == method)
            & (pl.col("seed") == seed)
        )["pgr"].item()

    assert value("small", "large", "xent", 0) == pytest.approx((0.7 - 0.6) / (0.8 - 0.6))
    assert value("small", "large", "xent", 1) == pytest.approx((0.7 - 0.7) / (0.9 - 0.7))
    assert value("small", "medium", "logconf", 0) == pytest.approx((0.75 - 0.6) / (0.7 - 0.6))
    assert value("small", "medium", "logconf", 1) is None  # ceiling 0.7 == weak 0.7
    assert value("medium", "large", "logconf", 1) == pytest.approx((0.8 - 0.7) / (0.9 - 0.7))

    summary = pgr_intervals(pgr)
    assert summary.height == 3 * 2
    row = _pair(summary, "small", "large", "xent")
    assert (row["n_seeds"], row["n_defined"]) == (2, 2)
    assert row["pgr"] == pytest.approx((0.5 + 0.0) / 2)
    assert row["weak_accuracy"] == pytest.approx(0.65)
    assert row["ceiling_accuracy"] == pytest.approx(0.85)
    assert row["student_accuracy"] == pytest.approx(0.7)
    assert (row["weak_effective_compute"], row["strong_effective_compute"]) == (1e15, 1e17)
    # the undefined seed is left out of the mean, not counted as zero
    partial = _pair(summary, "small", "medium", "logconf")
    assert (partial["n_seeds"], partial["n_defined"]) == (2, 1)
    assert partial["pgr"] == pytest.approx(1.5) and partial["pgr_low"] is None


def test_summary_is_sorted_by_weak_then_strong_compute_then_method(rows):
    summary = pgr_intervals(compute_pgr(_ladder(rows)))
    assert summary.select("weak_model", "strong_model", "method").rows() == [
        ("small", "medium", "logconf"),
        ("small", "medium", "xent"),
        ("small", "large", "logconf"),
        ("small", "large", "xent"),
        ("medium", "large", "logconf"),
        ("medium", "large", "xent"),
    ]


def test_all_undefined_pair_has_null_mean(rows):
    results = rows.table(
        [rows.truth("small", 0.6), rows.truth("large", 0.6), rows.student("small", "large", 0.7)]
    )
    row = pgr_intervals(compute_pgr(results)).row(0, named=True)
    assert (row["n_seeds"], row["n_defined"], row["pgr"], row["pgr_low"]) == (1, 0, None, None)


def test_output_order_does_not_depend_on_input_order(rows):
    results = _ladder(rows)
    shuffled = results.sample(fraction=1.0, shuffle=True, seed=3)
    assert compute_pgr(shuffled).equals(compute_pgr(results))
    assert pgr_intervals(compute_pgr(shuffled)).equals(pgr_intervals(compute_pgr(results)))


def test_empty_results_give_empty_tables_with_the_columns(rows):
    pgr = compute_pgr(rows.table([]))
    assert pgr.height == 0 and pgr.schema == pl.Schema(PGR_SCHEMA)
    assert pgr_intervals(pgr).height == 0
    assert "reason" in undefined_pgr_rows(pgr).columns


def test_the_tests_and_the_store_use_the_one_schema(rows):
    from w2s_ray.study import store

    assert rows.schema is RESULT_COLUMNS and store.RESULT_COLUMNS is RESULT_COLUMNS
    for column in (
        "max_length",
        "n_cut",
        "backend",
        "weak_accuracy_on_test",
        "ceiling_accuracy_on_test",
        "weak_auroc_on_test",
        "ceiling_auroc_on_test",
    ):
        assert column in RESULT_COLUMNS
    frame = store.results_frame([{"job_id": "b", "stage": "baseline", "backend": "vllm"}])
    assert frame["backend"].to_list() == ["vllm"]  # written by baselines, kept in the table


def test_results_from_before_the_new_columns_still_give_pgr(rows):
    results = rows.table(
        [rows.truth("small", 0.6), rows.truth("large", 0.8), rows.student("small", "large", 0.7)]
    )
    old = results.drop("weak_accuracy_on_test", "ceiling_auroc_on_test", "backend", "pretraining")
    assert compute_pgr(old).equals(compute_pgr(results))


def _auroc(row: dict, auroc: float) -> dict:
    return row | {"test_auroc": auroc}


def test_pgr_on_auroc_beside_pgr_on_accuracy(rows):
    results = rows.table(
        [
            _auroc(rows.truth("small", 0.6), 0.70),
            _auroc(rows.truth("large", 0.8), 0.90),
            _auroc(rows.student("small", "large", 0.7), 0.85),
            _auroc(rows.student("small", "large", 0.75, method="logconf"), 0.95),
        ]
    )
    by_method = {r["method"]: r for r in compute_pgr(results).iter_rows(named=True)}
    xent = by_method["xent"]
    assert (xent["weak_auroc"], xent["ceiling_auroc"], xent["student_auroc"]) == (0.7, 0.9, 0.85)
    assert xent["pgr_auroc"] == pytest.approx(0.75) and xent["pgr"] == pytest.approx(0.5)
    assert by_method["logconf"]["pgr_auroc"] == pytest.approx(1.25)  # not clipped


def test_pgr_on_auroc_is_null_without_a_gap(rows):
    results = rows.table(
        [
            _auroc(rows.truth("small", 0.6), 0.8),
            _auroc(rows.truth("large", 0.8), 0.8),
            _auroc(rows.student("small", "large", 0.7), 0.85),
        ]
    )
    row = _one(compute_pgr(results))
    assert row["pgr_auroc"] is None and row["pgr"] == pytest.approx(0.5)


def test_few_shot_pgr_uses_the_metrics_on_the_examples_it_was_scored_on(rows):
    """A baseline scored on a subset carries the weak and ceiling metrics on that subset; a
    student (whole test set) and a baseline without them use the ground-truth runs'."""
    on_subset = {
        "weak_accuracy_on_test": 0.5,
        "ceiling_accuracy_on_test": 0.9,
        "weak_auroc_on_test": 0.6,
        "ceiling_auroc_on_test": 1.0,
    }
    few = _auroc(rows.student("small", "large", 0.8), 0.9) | on_subset
    few |= {"stage": "baseline", "method": "fewshot_weak_k8", "job_id": "b1", "n_test": 100}
    few_whole = _auroc(rows.student("small", "large", 0.75), 0.8)
    few_whole |= {"stage": "baseline", "method": "fewshot_weak_k4", "job_id": "b2"}
    results = rows.table(
        [
            _auroc(rows.truth("small", 0.6), 0.70),
            _auroc(rows.truth("large", 0.8), 0.90),
            _auroc(rows.student("small", "large", 0.7), 0.85),
            few,
            few_whole,
        ]
    )
    by_method = {r["method"]: r for r in compute_pgr(results).iter_rows(named=True)}
    subset = by_method["fewshot_weak_k8"]
    assert (subset["weak_accuracy"], subset["ceiling_accuracy"]) == (0.5, 0.9)
    assert subset["pgr"] == pytest.approx((0.8 - 0.5) / (0.9 - 0.5))
    assert subset["pgr_auroc"] == pytest.approx((0.9 - 0.6) / (1.0 - 0.6))
    for method in ("xent", "fewshot_weak_k4"):
        assert (by_method[method]["weak_accuracy"], by_method[method]["ceiling_accuracy"]) == (
            0.6,
            0.8,
        )
    assert by_method["fewshot_weak_k4"]["pgr"] == pytest.approx(0.75)


def test_pgr_of_mean_accuracies_beside_the_mean_of_per_seed_pgrs(rows):
    """Seed 1's gap is thin (0.02), so its PGR (2.0) drags the per-seed mean far from the PGR
    of the mean accuracies."""
    truths = {0: (0.6, 0.8), 1: (0.7, 0.72), 2: (0.6, 0.8)}
    students = {0: 0.7, 1: 0.74, 2: 0.7}
    data = []
    for seed, (weak, ceiling) in truths.items():
        data += [rows.truth("small", weak, seed=seed), rows.truth("large", ceiling, seed=seed)]
        data += [rows.student("small", "large", students[seed], seed=seed)]
    row = _one(pgr_intervals(compute_pgr(rows.table(data))))
    assert row["pgr"] == pytest.approx((0.5 + 2.0 + 0.5) / 3)
    mean_weak, mean_ceiling, mean_student = 1.9 / 3, 2.32 / 3, 2.14 / 3
    assert row["pgr_of_means"] == pytest.approx(
        (mean_student - mean_weak) / (mean_ceiling - mean_weak)
    )
    # gaps 0.2, 0.02, 0.2: mean 0.14, and its 95% t interval reaches below 0
    assert row["gap"] == pytest.approx(0.14) and row["gap_low"] < 0 < row["gap_high"]
    assert row["gap_too_small"] and GAP_TOO_SMALL in row["note"]


def test_a_steady_gap_is_readable_and_one_thin_seed_is_not(rows):
    steady = [
        rows.truth(m, a, seed=s)
        for s, shift in enumerate((0.0, 0.01, -0.01))
        for m, a in (("small", 0.6 + shift), ("large", 0.7 + shift))
    ]
    steady += [rows.student("small", "large", 0.65, seed=s) for s in range(3)]
    row = _one(pgr_intervals(compute_pgr(rows.table(steady))))
    assert not row["gap_too_small"] and row["note"] == ""
    single = [rows.truth("small", 0.6), rows.truth("large", 0.615)]
    single += [rows.student("small", "large", 0.61)]
    row = _one(pgr_intervals(compute_pgr(rows.table(single))))
    assert row["gap_too_small"] and row["n_seeds"] == 1  # 0.015 < the one-seed minimum


def test_weak_label_few_shot_gets_a_pgr_and_other_baselines_do_not(rows):
    few_weak = {**rows.student("small", "large", 0.75), "stage": "baseline"}
    few_weak.update(method="fewshot_weak_k8", job_id="b1")
    zero = {**rows.student("small", "large", 0.65), "stage": "baseline"}
    zero.update(method="zeroshot", weak_model=None, weak_effective_compute=None, job_id="b2")
    results = rows.table([rows.truth("small", 0.6), rows.truth("large", 0.8), few_weak, zero])
    row = _one(compute_pgr(results))
    assert (row["method"], row["pgr"]) == ("fewshot_weak_k8", pytest.approx(0.75))


def test_the_baselines_table_reads_the_ceiling_on_the_examples_a_baseline_scored(rows):
    from analysis.baselines import baseline_table

    few_weak = {**rows.student("small", "large", 0.75), "stage": "baseline", "job_id": "b1"}
    few_weak.update(method="fewshot_weak_k8", ceiling_accuracy_on_test=0.9)
    zero = {**rows.student("small", "large", 0.65), "stage": "baseline", "job_id": "b2"}
    zero.update(method="zeroshot", weak_model=None, weak_effective_compute=None)
    results = rows.table([rows.truth("small", 0.6), rows.truth("large", 0.8), few_weak, zero])
    table = baseline_table(results, compute_pgr(results))
    by_method = {row["method"]: row for row in table.iter_rows(named=True)}
    weak_row, zero_row = by_method["fewshot_weak_k8"], by_method["zeroshot"]
    assert weak_row["ceiling_accuracy"] == pytest.approx(0.9)  # not the whole set's 0.8
    assert weak_row["ceiling_examples"] == "same examples"
    assert zero_row["ceiling_accuracy"] == pytest.approx(0.8)
    assert zero_row["ceiling_examples"] == "whole test set"

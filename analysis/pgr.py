"""Performance gap recovered (Burns et al. 2023): the share of the weak-to-ceiling gap a student
closes. PGR is null, never clipped, when the gap is not positive, so a bad rung stays visible.

It is computed twice per run: on accuracy (the paper) and on AUROC (EleutherAI's w2s reports
that one; it does not depend on a decision threshold).
"""

from __future__ import annotations

import polars as pl

from analysis.schema import PGR_SCHEMA, RESULT_COLUMNS, conform

# The same ground-truth run is both a weak supervisor's accuracy and a strong model's ceiling,
# so it is matched on everything that makes two runs comparable.
GROUND_TRUTH_KEYS = ("dataset", "seed", "mode")

PAIR_KEYS = ("dataset", "weak_model", "strong_model", "method")
# How tables of pairs are read: by dataset, then up the ladder (weak, then strong compute)
PAIR_ORDER = (
    "dataset",
    "weak_effective_compute",
    "strong_effective_compute",
    "weak_model",
    "strong_model",
    "method",
)
REASON_MISSING = "missing ground truth"
REASON_NO_GAP = "ceiling <= weak"
REASON_NO_STUDENT = "missing student accuracy"
METRICS = ("accuracy", "auroc")
# a student's own diagnostics, carried from its results row (see analysis.schema)
DIAGNOSTICS = ("misfit", "misfit_sq", "error_overlap", "new_error_rate")


def published_ceilings(results: pl.DataFrame) -> pl.Expr:
    """Ground-truth rows of models as published: the ceilings scaling plots and fits draw
    (a generatively fine-tuned copy's ceiling serves its own students' PGR only)."""
    stage = pl.col("stage") == "ground_truth"
    return stage & pl.col("pretraining").is_null() if "pretraining" in results.columns else stage


def _ground_truth(results: pl.DataFrame) -> pl.DataFrame:
    """One accuracy and AUROC per (dataset, seed, mode, model, pretraining); a rerun duplicate
    keeps its first job_id."""
    keys = [*GROUND_TRUTH_KEYS, "model", "pretraining"]
    return (
        results.filter(pl.col("stage") == "ground_truth")
        .sort([*keys, "job_id"], nulls_last=True)
        .unique(subset=keys, keep="first", maintain_order=True)
        .select(
            *keys,
            pl.col("test_accuracy").fill_nan(None).alias("accuracy"),
            pl.col("test_auroc").fill_nan(None).alias("auroc"),
            pl.col("test_brier").fill_nan(None).alias("brier"),
            pl.col("effective_compute").alias("gt_effective_compute"),
        )
    )


def _gap_recovered(metric: str) -> pl.Expr:
    """(student − weak) / (ceiling − weak), null unless the gap is positive; never clipped."""
    weak, ceiling, student = (pl.col(f"{who}_{metric}") for who in ("weak", "ceiling", "student"))
    gap = ceiling - weak
    return pl.when(gap > 0).then((student - weak) / gap).otherwise(None)


def compute_pgr(results: pl.DataFrame) -> pl.DataFrame:
    """One row per student run: its weak supervisor's and its ceiling's accuracy and AUROC,
    and its PGR on each.

    Few-shot prompting with a weak model's labels as demonstrations is weak supervision too,
    so those baseline rows get a PGR as well (method `fewshot_weak_k<k>`). A baseline may be
    scored on part of the test set; its row then carries the weak supervisor's and the
    ceiling's metrics on those same examples (`*_on_test`), and those are used instead of the
    ground-truth runs' metrics on the whole test set.
    """
    results = conform(results, RESULT_COLUMNS)  # files from before a column was added
    truth = _ground_truth(results)
    supervised = (pl.col("stage") == "student") | (
        (pl.col("stage") == "baseline") & pl.col("weak_model").is_not_null()
    )
    on_test = [f"{who}_{metric}_on_test" for who in ("weak", "ceiling") for metric in METRICS]
    students = results.filter(supervised).select(
        *GROUND_TRUTH_KEYS,
        "pretraining",
        "weak_model",
        pl.col("model").alias("strong_model"),
        "method",
        pl.col("test_accuracy").fill_nan(None).alias("student_accuracy"),
        pl.col("test_auroc").fill_nan(None).alias("student_auroc"),
        *[pl.col(name).fill_nan(None) for name in on_test],
        "weak_effective_compute",
        pl.col("effective_compute").alias("strong_effective_compute"),
        *[pl.col(name).fill_nan(None) for name in DIAGNOSTICS],
        pl.col("test_brier").fill_nan(None).alias("student_brier"),
        "round",
        "method_spec",
    )
    # weak supervisors are models as published; a student's ceiling starts where it did
    weak = (
        truth.filter(pl.col("pretraining").is_null())
        .drop("pretraining")
        .rename(
            {
                "model": "weak_model",
                "accuracy": "weak_accuracy",
                "auroc": "weak_auroc",
                "brier": "weak_brier",
                "gt_effective_compute": "weak_gt_compute",
            }
        )
    )
    ceiling = truth.rename(
        {"model": "strong_model", "accuracy": "ceiling_accuracy", "auroc": "ceiling_auroc"}
    ).drop("gt_effective_compute", "brier")
    joined = students.join(
        weak, on=[*GROUND_TRUTH_KEYS, "weak_model"], how="left", nulls_equal=True
    ).join(
        ceiling,
        on=[*GROUND_TRUTH_KEYS, "strong_model", "pretraining"],
        how="left",
        nulls_equal=True,
    )
    # a row's own metrics on the examples it was scored on win over the whole-test-set ones;
    # weak and ceiling are taken from the same source, never one from each
    same_examples = []
    for metric in METRICS:
        own = (
            pl.col(f"weak_{metric}_on_test").is_not_null()
            & pl.col(f"ceiling_{metric}_on_test").is_not_null()
        )
        same_examples += [
            pl.when(own)
            .then(pl.col(f"{who}_{metric}_on_test"))
            .otherwise(pl.col(f"{who}_{metric}"))
            .alias(f"{who}_{metric}")
            for who in ("weak", "ceiling")
        ]
    return (
        joined.with_columns(
            *same_examples,
            # older result files may lack the weak compute on the student row
            pl.coalesce("weak_effective_compute", "weak_gt_compute").alias(
                "weak_effective_compute"
            ),
        )
        .with_columns(
            _gap_recovered("accuracy").alias("pgr"),
            _gap_recovered("auroc").alias("pgr_auroc"),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in PGR_SCHEMA.items()])
        .sort(*PAIR_ORDER, "seed", nulls_last=True)
    )


def undefined_pgr_rows(pgr: pl.DataFrame) -> pl.DataFrame:
    """The rows whose PGR is null, each with why, so an undefined rung can be explained."""
    missing_truth = pl.col("weak_accuracy").is_null() | pl.col("ceiling_accuracy").is_null()
    reason = (
        pl.when(missing_truth)
        .then(pl.lit(REASON_MISSING))
        .when(pl.col("ceiling_accuracy") <= pl.col("weak_accuracy"))
        .then(pl.lit(REASON_NO_GAP))
        .otherwise(pl.lit(REASON_NO_STUDENT))
    )
    return pgr.filter(pl.col("pgr").is_null()).with_columns(reason.alias("reason"))

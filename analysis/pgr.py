"""Performance gap recovered (Burns et al. 2023): the share of the weak-to-ceiling gap a student
closes. PGR is null, never clipped, when the gap is not positive, so a bad rung stays visible.
"""

from __future__ import annotations

import polars as pl

# The same ground-truth run is both a weak supervisor's accuracy and a strong model's ceiling,
# so it is matched on everything that makes two runs comparable.
GROUND_TRUTH_KEYS = ("dataset", "seed", "mode")

PGR_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "dataset": pl.String,
    "seed": pl.Int64,
    "weak_model": pl.String,
    "strong_model": pl.String,
    "method": pl.String,
    "weak_accuracy": pl.Float64,
    "ceiling_accuracy": pl.Float64,
    "student_accuracy": pl.Float64,
    "pgr": pl.Float64,
    "weak_effective_compute": pl.Float64,
    "strong_effective_compute": pl.Float64,
}
PAIR_KEYS = ("dataset", "weak_model", "strong_model", "method")
REASON_MISSING = "missing ground truth"
REASON_NO_GAP = "ceiling <= weak"
REASON_NO_STUDENT = "missing student accuracy"


def _pretraining(results: pl.DataFrame) -> pl.Expr:
    """Null for models as published; "generative" for copies first fine-tuned as LMs."""
    if "pretraining" in results.columns:
        return pl.col("pretraining")
    return pl.lit(None, dtype=pl.String).alias("pretraining")  # results from before the column


def published_ceilings(results: pl.DataFrame) -> pl.Expr:
    """Ground-truth rows of models as published: the ceilings scaling plots and fits draw
    (a generatively fine-tuned copy's ceiling serves its own students' PGR only)."""
    stage = pl.col("stage") == "ground_truth"
    return stage & pl.col("pretraining").is_null() if "pretraining" in results.columns else stage


def _ground_truth(results: pl.DataFrame) -> pl.DataFrame:
    """One accuracy per (dataset, seed, mode, model, pretraining); a rerun duplicate keeps its
    first job_id."""
    keys = [*GROUND_TRUTH_KEYS, "model", "pretraining"]
    return (
        results.with_columns(_pretraining(results))
        .filter(pl.col("stage") == "ground_truth")
        .sort([*keys, "job_id"], nulls_last=True)
        .unique(subset=keys, keep="first", maintain_order=True)
        .select(
            *keys,
            pl.col("test_accuracy").fill_nan(None).alias("accuracy"),
            pl.col("effective_compute").alias("gt_effective_compute"),
        )
    )


def compute_pgr(results: pl.DataFrame) -> pl.DataFrame:
    """One row per student run: its weak supervisor's and its ceiling's accuracy, and its PGR.

    Few-shot prompting with a weak model's labels as demonstrations is weak supervision too,
    so those baseline rows get a PGR as well (method `fewshot_weak_k<k>`).
    """
    truth = _ground_truth(results)
    supervised = (pl.col("stage") == "student") | (
        (pl.col("stage") == "baseline") & pl.col("weak_model").is_not_null()
    )
    students = (
        results.with_columns(_pretraining(results))
        .filter(supervised)
        .select(
            *GROUND_TRUTH_KEYS,
            "pretraining",
            "weak_model",
            pl.col("model").alias("strong_model"),
            "method",
            pl.col("test_accuracy").fill_nan(None).alias("student_accuracy"),
            "weak_effective_compute",
            pl.col("effective_compute").alias("strong_effective_compute"),
        )
    )
    # weak supervisors are models as published; a student's ceiling starts where it did
    weak = (
        truth.filter(pl.col("pretraining").is_null())
        .drop("pretraining")
        .rename(
            {
                "model": "weak_model",
                "accuracy": "weak_accuracy",
                "gt_effective_compute": "weak_gt_compute",
            }
        )
    )
    ceiling = truth.rename({"model": "strong_model", "accuracy": "ceiling_accuracy"}).drop(
        "gt_effective_compute"
    )
    joined = students.join(
        weak, on=[*GROUND_TRUTH_KEYS, "weak_model"], how="left", nulls_equal=True
    ).join(
        ceiling,
        on=[*GROUND_TRUTH_KEYS, "strong_model", "pretraining"],
        how="left",
        nulls_equal=True,
    )
    gap = pl.col("ceiling_accuracy") - pl.col("weak_accuracy")
    return (
        joined.with_columns(
            pl.when(gap > 0)
            .then((pl.col("student_accuracy") - pl.col("weak_accuracy")) / gap)
            .otherwise(None)
            .alias("pgr"),
            # older result files may lack the weak compute on the student row
            pl.coalesce("weak_effective_compute", "weak_gt_compute").alias(
                "weak_effective_compute"
            ),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in PGR_SCHEMA.items()])
        .sort(
            "dataset",
            "weak_effective_compute",
            "strong_effective_compute",
            "weak_model",
            "strong_model",
            "method",
            "seed",
            nulls_last=True,
        )
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

"""Zero/few-shot prompting baselines beside fine-tuning, on the same compute axis.

Each baseline row is set next to what fine-tuning the same model reached: its ground-truth
ceiling and, for weak-label demonstrations, its weak-to-strong students from the same weak
supervisor, so a reader sees at once whether prompting or fine-tuning recovers more.
"""

from __future__ import annotations

import polars as pl

from analysis.pgr import published_ceilings
from analysis.stats import LEVEL, t_interval


def baseline_table(
    results: pl.DataFrame,
    pgr: pl.DataFrame,
    *,
    level: float = LEVEL,
) -> pl.DataFrame:
    """Per (dataset, model, method, weak supervisor): prompting accuracy over seeds with its
    interval, the model's fine-tuned ceiling, and its best fine-tuned student's accuracy.

    The ceiling is measured on the baseline's own test examples where the rows carry it
    (weak-label few-shot); otherwise on the whole test set, which `ceiling_examples` says,
    since a baseline may score only part of it (`baselines.n_test`)."""
    prompted = results.filter(pl.col("stage") == "baseline")
    keys = ["dataset", "model", "method", "weak_model"]
    ceiling = (
        results.filter(published_ceilings(results))
        .group_by("dataset", "model")
        .agg(pl.col("test_accuracy").mean().alias("ceiling_accuracy"))
    )
    students = (
        pgr.filter(~pl.col("method").str.starts_with("fewshot"))
        .group_by("dataset", "weak_model", "strong_model", "method")
        .agg(pl.col("student_accuracy").mean())
        .group_by("dataset", "weak_model", "strong_model")
        .agg(pl.col("student_accuracy").max().alias("best_student_accuracy"))
        .rename({"strong_model": "model"})
    )
    rows = []
    for key, group in prompted.group_by(keys, maintain_order=True):
        values = group["test_accuracy"].drop_nulls().drop_nans().to_numpy()
        low, high = t_interval(values, level) or (None, None)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_seeds": len(values),
                "accuracy": float(values.mean()) if len(values) else None,
                "accuracy_low": low,
                "accuracy_high": high,
                "shots_mean": group["shots_mean"].mean(),
                "effective_compute": group["effective_compute"].max(),
                # weak-label baselines carry the ceiling on exactly the examples they scored
                "ceiling_on_test": _mean_or_none(group, "ceiling_accuracy_on_test"),
            }
        )
    schema = {
        "dataset": pl.String,
        "model": pl.String,
        "method": pl.String,
        "weak_model": pl.String,
        "n_seeds": pl.Int64,
        "accuracy": pl.Float64,
        "accuracy_low": pl.Float64,
        "accuracy_high": pl.Float64,
        "shots_mean": pl.Float64,
        "effective_compute": pl.Float64,
        "ceiling_on_test": pl.Float64,
    }
    table = pl.DataFrame(rows, schema=schema)
    paired = pl.col("ceiling_on_test").is_not_null()
    return (
        table.join(ceiling, on=["dataset", "model"], how="left")
        .with_columns(
            pl.coalesce("ceiling_on_test", "ceiling_accuracy").alias("ceiling_accuracy"),
            pl.when(paired)
            .then(pl.lit("same examples"))
            .otherwise(pl.lit("whole test set"))
            .alias("ceiling_examples"),
        )
        .drop("ceiling_on_test")
        .join(students, on=["dataset", "weak_model", "model"], how="left", nulls_equal=False)
        .sort("dataset", "effective_compute", "model", "method", "weak_model", nulls_last=True)
    )


def _mean_or_none(group: pl.DataFrame, column: str) -> float | None:
    if column not in group.columns:
        return None
    values = group[column].drop_nulls()
    return float(values.mean()) if len(values) else None  # type: ignore[arg-type]

"""Per-pair diagnostics of what a student learned from its weak labels: how much it disagrees
with them (misfit), whether it repeats the supervisor's errors (error overlap) or makes new
ones, and how its gain relates to its misfit.

Charikar, Pabbaraju & Shiragur (2024), "Quantifying the Gain in Weak-to-Strong
Generalization": in squared loss, under their convexity and realizability assumptions, the
student's gain over its weak supervisor is at least its misfit on the weak labels. Here the
misfit is measured on the student's half of the pool (where it trained) and the gain on the
test set, so the inequality is read, not guaranteed.
"""

from __future__ import annotations

import math

import polars as pl

from analysis.pgr import PAIR_KEYS, PAIR_ORDER

MEANS = (
    "misfit",
    "misfit_sq",
    "error_overlap",
    "new_error_rate",
    "accuracy_gain",
    "brier_gain",
)
MIN_POINTS_FOR_CORRELATION = 3

DIAGNOSTICS_SCHEMA: dict[str, pl.DataType] = {
    **dict.fromkeys(PAIR_KEYS, pl.String()),
    **dict.fromkeys(MEANS, pl.Float64()),
    "n_seeds": pl.Int64(),
    "round": pl.Int64(),
    "method_spec": pl.String(),
    "weak_effective_compute": pl.Float64(),
    "strong_effective_compute": pl.Float64(),
}
SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String(),
    "n_points": pl.Int64(),
    "gain_misfit_correlation": pl.Float64(),  # Pearson, accuracy gain vs misfit; null: < 3
    "n_with_brier": pl.Int64(),  # points with both Brier gain and squared misfit
    "n_gain_at_least_misfit": pl.Int64(),  # of those, Brier gain ≥ misfit_sq
}


def diagnostics_table(pgr: pl.DataFrame) -> pl.DataFrame:
    """Per (dataset, weak, strong, method): the means over seeds of the diagnostics, the
    accuracy gain (student − weak) and the Brier gain (weak − student; positive: better).

    Runs without a misfit (baselines, files from before it was recorded) are left out.
    """
    runs = pgr.filter(pl.col("misfit").is_not_null()).with_columns(
        (pl.col("student_accuracy") - pl.col("weak_accuracy")).alias("accuracy_gain"),
        (pl.col("weak_brier") - pl.col("student_brier")).alias("brier_gain"),
    )
    table = (
        runs.group_by(PAIR_KEYS)
        .agg(
            *[pl.col(name).mean() for name in MEANS],
            pl.col("seed").n_unique().alias("n_seeds"),
            pl.col("round").drop_nulls().first(),
            pl.col("method_spec").drop_nulls().first(),
            pl.col("weak_effective_compute").max(),
            pl.col("strong_effective_compute").max(),
        )
        .sort(*PAIR_ORDER, nulls_last=True)
    )
    return table.select([pl.col(n).cast(t) for n, t in DIAGNOSTICS_SCHEMA.items()])


def diagnostics_summary(table: pl.DataFrame) -> pl.DataFrame:
    """Per dataset, over its (pair, method) points: the correlation of accuracy gain with
    misfit, and how many points satisfy the theory's Brier gain ≥ squared misfit."""
    rows = []
    for dataset in sorted(table["dataset"].drop_nulls().unique().to_list()):
        points = table.filter(pl.col("dataset") == dataset)
        both = points.drop_nulls(["accuracy_gain", "misfit"])
        correlation = None
        if both.height >= MIN_POINTS_FOR_CORRELATION:
            value = both.select(pl.corr("accuracy_gain", "misfit")).item()
            correlation = None if value is None or math.isnan(value) else value  # NaN: no spread
        brier = points.drop_nulls(["brier_gain", "misfit_sq"])
        rows.append(
            {
                "dataset": dataset,
                "n_points": points.height,
                "gain_misfit_correlation": correlation,
                "n_with_brier": brier.height,
                "n_gain_at_least_misfit": brier.filter(
                    pl.col("brier_gain") >= pl.col("misfit_sq")
                ).height,
            }
        )
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA)


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


DIAGNOSTICS_TEXT = [
    "Per pair and method, means over seeds. Misfit: the share of the student's training "
    "examples (its half of the pool) where its hard prediction differs from the label it "
    "trained on (weak, processed, or a previous round's); misfit²: the mean squared "
    "difference of their P(1) there. Error overlap: of the test examples the weak "
    "supervisor gets wrong, the share the student also gets wrong; new errors: of those it "
    "gets right, the share the student gets wrong. Accuracy gain: student − weak test "
    "accuracy; Brier gain: weak − student test Brier score (mean squared error of P(1)).",
    "Charikar, Pabbaraju & Shiragur (2024) show that in squared loss, under their convexity "
    "and realizability assumptions, a student's gain over its supervisor is at least its "
    "misfit on the weak labels: Brier gain ≥ misfit². Here the misfit is measured on the "
    "student's training half and the gain on the test set, so the count below is a reading, "
    "not a check of the theorem.",
]
DIAGNOSTICS_HEADERS = [
    "dataset",
    "weak → strong",
    "method",
    "misfit",
    "error overlap",
    "new errors",
    "accuracy gain",
    "Brier gain",
    "misfit²",
    "seeds",
]


def diagnostics_cells(table: pl.DataFrame) -> list[list[str]]:
    """The per-pair table as text rows under `DIAGNOSTICS_HEADERS`."""
    return [
        [
            row["dataset"],
            f"{row['weak_model']} → {row['strong_model']}",
            row["method"],
            _num(row["misfit"], ".3f"),
            _num(row["error_overlap"], ".3f"),
            _num(row["new_error_rate"], ".3f"),
            _num(row["accuracy_gain"], "+.3f"),
            _num(row["brier_gain"], "+.4f"),
            _num(row["misfit_sq"], ".4f"),
            str(row["n_seeds"]),
        ]
        for row in table.iter_rows(named=True)
    ]


def summary_lines(summary: pl.DataFrame) -> list[str]:
    """Per dataset, the correlation and the inequality count in words."""
    lines = []
    for row in summary.iter_rows(named=True):
        corr = row["gain_misfit_correlation"]
        corr_text = (
            f"correlation of accuracy gain with misfit {corr:+.2f}"
            if corr is not None
            else f"no correlation (fewer than {MIN_POINTS_FOR_CORRELATION} points, or no spread)"
        )
        lines.append(
            f"{row['dataset']}: {corr_text} over {row['n_points']} pair × method points; "
            f"Brier gain ≥ misfit² at {row['n_gain_at_least_misfit']} of {row['n_with_brier']} "
            "points with Brier scores."
        )
    return lines

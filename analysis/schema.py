"""The study's tables, column by column, defined once: `results.parquet` (one row per evaluated
job), `pgr.parquet` (one row per student run) and `data.parquet` (what each dataset split held
and what was cut or dropped). The study store, the analysis and the tests all import these, so
a column added here reaches every writer and reader at once. No Ray, no torch.
"""

from __future__ import annotations

from typing import Any

import polars as pl

RESULT_COLUMNS: dict[str, Any] = {
    "job_id": pl.String,
    "stage": pl.String,
    "dataset": pl.String,
    "seed": pl.Int64,
    "model": pl.String,
    "weak_model": pl.String,
    "method": pl.String,
    "mode": pl.String,
    "test_accuracy": pl.Float64,
    "test_auroc": pl.Float64,
    "agreement_with_weak": pl.Float64,
    "effective_compute": pl.Float64,
    "weak_effective_compute": pl.Float64,
    "n_train": pl.Int64,  # examples the model learned from (a bootstrap rung: each fold model)
    "n_folds": pl.Int64,  # bootstrap rungs: cross-fitting folds (one model per fold)
    "n_test": pl.Int64,  # test examples this job was scored on (baselines may score a subset)
    "shots_mean": pl.Float64,  # baselines: demonstrations that fitted the context, on average
    "chain": pl.String,  # bootstrapping: models the labels passed through, "weak>mid>strong"
    "selection": pl.String,  # students: last epoch, or chosen on weak labels / oracle truth
    "selected_epoch": pl.Int64,
    "pretraining": pl.String,  # "generative": the model was first fine-tuned as an LM on the task
    "wall_seconds": pl.Float64,
    "max_length": pl.Int64,  # token limit of this job's inputs
    "n_cut": pl.Int64,  # inputs of this job longer than max_length, cut to it
    # training inputs left out: identical after the cut to one with the other label
    "n_dropped_conflicting": pl.Int64,
    # the inference backend that made the outputs: prompt scores (baselines), weak labels or
    # answers (label jobs); "torch" for probe heads on cached features (see README)
    "backend": pl.String,
    # Baselines scored on a subset of the test set: the weak supervisor's and the ground-truth
    # ceiling's metrics on exactly those examples, so their PGR compares like with like.
    "weak_accuracy_on_test": pl.Float64,
    "ceiling_accuracy_on_test": pl.Float64,
    "weak_auroc_on_test": pl.Float64,
    "ceiling_auroc_on_test": pl.Float64,
    # Mean (P(label 1) − true label)² on the test set: the squared loss the misfit theory
    # speaks of (every evaluated row; null in files from before it was recorded).
    "test_brier": pl.Float64,
    # Students, on the examples they trained on (their half of the train pool): the share whose
    # hard prediction differs from the hard training label (P > 0.5), and the mean of
    # (student P(1) − training label P(1))², the misfit of Charikar et al. (2024).
    "misfit": pl.Float64,
    "misfit_sq": pl.Float64,
    # Students, on the test set: of the examples the weak supervisor gets wrong, the share the
    # student gets wrong too (imitated errors); of those it gets right, the share the student
    # gets wrong (errors of its own).
    "error_overlap": pl.Float64,
    "new_error_rate": pl.Float64,
    # strong-to-strong rounds: 1 on weak labels, 2.. on the previous round's labels (the round
    # is also the method's suffix, `_r2`); null for methods without rounds
    "round": pl.Int64,
    "method_spec": pl.String,  # what the method ran (loss, options, label processing), one line
    # LoRA studies: the adapters every classifier fine-tune trained (rank, alpha, dropout,
    # layers); null for full fine-tunes and probes
    "lora": pl.String,
    # Students: training examples label processing removed, and labels whose hard class it
    # changed.
    "n_label_dropped": pl.Int64,
    "n_label_flipped": pl.Int64,
}

PGR_SCHEMA: dict[str, Any] = {
    "dataset": pl.String,
    "seed": pl.Int64,
    "weak_model": pl.String,
    "strong_model": pl.String,
    "method": pl.String,
    "weak_accuracy": pl.Float64,
    "ceiling_accuracy": pl.Float64,
    "student_accuracy": pl.Float64,
    "pgr": pl.Float64,
    "weak_auroc": pl.Float64,
    "ceiling_auroc": pl.Float64,
    "student_auroc": pl.Float64,
    "pgr_auroc": pl.Float64,
    "weak_effective_compute": pl.Float64,
    "strong_effective_compute": pl.Float64,
    # Diagnostics (null for baselines and older files): the student's misfit on its training
    # labels and error overlap with the weak supervisor (see RESULT_COLUMNS), and the test Brier
    # score of the weak supervisor (its ground-truth run, joined like weak_accuracy) and of
    # the student.
    "misfit": pl.Float64,
    "misfit_sq": pl.Float64,
    "error_overlap": pl.Float64,
    "new_error_rate": pl.Float64,
    "weak_brier": pl.Float64,
    "student_brier": pl.Float64,
    "round": pl.Int64,
    "method_spec": pl.String,
}

DATA_COUNTS_SCHEMA: dict[str, Any] = {
    "dataset": pl.String,
    "split": pl.String,  # "pool" (weak training, labelling, students) or "test"
    "n_available": pl.Int64,  # examples the source held for this split
    "n_requested": pl.Int64,  # the study's cap (data.n_train / n_test); null: all
    "n_used": pl.Int64,
    "n_cut": pl.Int64,  # used examples longer than max_length, cut to it (too_long: keep_end)
    "n_dropped_too_long": pl.Int64,  # too_long: drop
    "n_dropped_conflicting": pl.Int64,  # identical after cutting, with opposite labels
    "n_dropped_straddling": pl.Int64,  # related to an example on the other side of the split
    "max_length": pl.Int64,
    "too_long": pl.String,  # the policy: keep_end | drop | error
}


def conform(frame: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame:
    """`frame` in exactly `schema`'s columns and order: a column a file from an older version
    lacks is added as nulls, so old studies still report; extra columns are dropped."""
    if not frame.columns:  # a literal over no columns would make one row, not none
        return pl.DataFrame(schema=schema)
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )

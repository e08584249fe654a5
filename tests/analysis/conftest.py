"""Builders for the study results table, in the contract's columns, for the analysis tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

RESULT_SCHEMA: dict[str, Any] = {
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
    "n_train": pl.Int64,
    "n_folds": pl.Int64,
    "shots_mean": pl.Float64,
    "chain": pl.String,
    "selection": pl.String,
    "selected_epoch": pl.Int64,
    "pretraining": pl.String,
    "wall_seconds": pl.Float64,
}
COMPUTE = {"small": 1e15, "medium": 1e16, "large": 1e17}


def truth(
    model: str,
    accuracy: float | None,
    *,
    seed: int = 0,
    dataset: str = "toy",
    method: str | None = None,
) -> dict[str, Any]:
    return _row("ground_truth", model, accuracy, seed=seed, dataset=dataset, method=method)


def label(model: str, accuracy: float, *, seed: int = 0, dataset: str = "toy") -> dict[str, Any]:
    return _row("label", model, accuracy, seed=seed, dataset=dataset)


def student(
    weak: str,
    strong: str,
    accuracy: float | None,
    *,
    seed: int = 0,
    dataset: str = "toy",
    method: str = "xent",
) -> dict[str, Any]:
    return _row("student", strong, accuracy, seed=seed, dataset=dataset, method=method, weak=weak)


def _row(
    stage: str,
    model: str,
    accuracy: float | None,
    *,
    seed: int,
    dataset: str,
    method: str | None = None,
    weak: str | None = None,
) -> dict[str, Any]:
    return {
        "job_id": f"{stage}/{dataset}/{weak}/{model}/{method}/{seed}",
        "stage": stage,
        "dataset": dataset,
        "seed": seed,
        "model": model,
        "weak_model": weak,
        "method": method,
        "mode": "probe",
        "test_accuracy": accuracy,
        "test_auroc": 0.5,
        "agreement_with_weak": None if weak is None else 0.9,
        "effective_compute": COMPUTE[model],
        "weak_effective_compute": None if weak is None else COMPUTE[weak],
        "n_train": 100,
        "shots_mean": None,
        "chain": None,
        "selection": "last" if stage == "student" else None,
        "selected_epoch": None,
        "pretraining": None,
        "wall_seconds": 1.0,
    }


def table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


@pytest.fixture
def rows() -> SimpleNamespace:
    """The builders as a fixture: test modules here cannot import a sibling module by name."""
    return SimpleNamespace(
        truth=truth,
        label=label,
        student=student,
        table=table,
        compute=COMPUTE,
        schema=RESULT_SCHEMA,
    )

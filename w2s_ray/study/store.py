"""The study directory: job folders, atomic result files, and the tables built from them.

Results are plain files a person can read; `results.parquet` is always rebuilt from the
`result.json` files, so a crash can never leave the table and the jobs disagreeing.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import polars as pl

from w2s_ray.cache import atomic_write_bytes, atomic_write_json

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
    "n_train": pl.Int64,
    "wall_seconds": pl.Float64,
}
EVALUATED_STAGES = ("ground_truth", "label", "student")


class StudyStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def result_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.json"

    def read_result(self, job_id: str) -> dict[str, Any] | None:
        """A finished job's result, or None; an unreadable file counts as not finished."""
        result = self.read_json(self.result_path(job_id))
        return result if result is not None and result.get("job_id") == job_id else None

    def is_done(self, job_id: str) -> bool:
        return self.read_result(job_id) is not None

    def write_result(self, job_id: str, result: dict[str, Any]) -> None:
        atomic_write_json(self.result_path(job_id), {"job_id": job_id, **result})
        (self.job_dir(job_id) / "error.txt").unlink(missing_ok=True)  # an earlier try's

    def mark_started(self, job_id: str) -> None:
        """Who runs the job since when: `status` tells running, interrupted and retried jobs."""
        previous = self.read_json(self.job_dir(job_id) / "started.json") or {}
        atomic_write_json(
            self.job_dir(job_id) / "started.json",
            {
                "started_at": time.time(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "attempt": int(previous.get("attempt", 0)) + 1,
            },
        )

    def read_json(self, path: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def write_plan(self, plan: dict[str, Any]) -> None:
        """Every job with its stage, title and resources, so `status` needs no registry."""
        atomic_write_json(self.root / "plan.json", plan)

    def read_plan(self) -> dict[str, Any] | None:
        return self.read_json(self.root / "plan.json")

    def write_driver(self, driver: dict[str, Any]) -> None:
        atomic_write_json(self.root / "driver.json", driver)

    def read_driver(self) -> dict[str, Any] | None:
        return self.read_json(self.root / "driver.json")

    def write_error(self, job_id: str, message: str) -> None:
        atomic_write_bytes(self.job_dir(job_id) / "error.txt", message.encode())

    def read_error(self, job_id: str) -> str | None:
        path = self.job_dir(job_id) / "error.txt"
        return path.read_text() if path.exists() else None

    def results_table(self, job_ids: list[str]) -> pl.DataFrame:
        """One row per finished, evaluated job of the plan, in the contract's columns."""
        rows = []
        for job_id in job_ids:
            result = self.read_result(job_id)
            if result is not None and result.get("stage") in EVALUATED_STAGES:
                rows.append({col: result.get(col) for col in RESULT_COLUMNS})
        return pl.DataFrame(rows, schema=RESULT_COLUMNS).sort("stage", "dataset", "seed", "job_id")

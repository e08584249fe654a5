"""A study's state from its files alone: works while it runs, after a crash, without Ray."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from w2s_ray.errors import UserError
from w2s_ray.study.graph import STAGES, row_of
from w2s_ray.study.heartbeat import elapsed_seconds, is_alive
from w2s_ray.study.store import ERROR_FILE, StudyStore

STATES = ("done", "running", "failed", "pending")


@dataclass
class StageStatus:
    """Job counts of one stage and what is left of it.

    Time left: the plan's estimate of each job left (w2s_ray.study.cost), divided by how
    many such jobs the cluster runs at once, times `ratio` (what finished jobs took over
    what they were estimated to). A plan written without estimates falls back on the mean
    wall time of the stage's finished jobs.
    """

    stage: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    interrupted: int = 0  # started by a driver that is gone: resume continues them
    errors: list[tuple[str, str]] = field(default_factory=list)  # (title, last error)
    mean_seconds: float | None = None
    slots: int = 1  # jobs of this stage that run at once on the cluster
    planned: float | None = None  # Σ estimate / slots of the jobs left; None: not planned
    actual: float = 0.0  # wall seconds of finished jobs that have an estimate,
    estimated: float = 0.0  # and their estimates
    ratio: float = 1.0

    @property
    def remaining(self) -> int:
        return self.counts["running"] + self.counts["pending"]

    @property
    def remaining_seconds(self) -> float | None:
        if not self.remaining:
            return 0.0
        if self.planned is not None:
            return self.planned * self.ratio
        if self.mean_seconds is None:
            return None
        return math.ceil(self.remaining / self.slots) * self.mean_seconds


@dataclass
class StudyStatus:
    name: str
    running: bool
    driver: dict[str, object] | None
    elapsed_seconds: float
    stages: list[StageStatus]

    @property
    def remaining_seconds(self) -> float | None:
        parts = [s.remaining_seconds for s in self.stages]
        return None if any(p is None for p in parts) else sum(parts)  # type: ignore[misc]


def job_state(
    store: StudyStore, job_id: str, result: dict[str, object] | None, driver_alive: bool
) -> tuple[str, bool]:
    """(state, interrupted) of one job, from its files (`result`: its result, read once)."""
    if result is not None:
        return "done", False
    started = store.read_json(store.job_file(job_id, "started.json"))
    errored_at = store.mtime(store.job_file(job_id, ERROR_FILE))
    errored_after_start = errored_at is not None and (
        started is None or errored_at >= float(started["started_at"])
    )
    if errored_after_start:  # a retry writes a newer started.json, and is running again
        return "failed", False
    if started is not None:
        return ("running", False) if driver_alive else ("pending", True)
    return "pending", False


def _run_order(row: str) -> tuple[int, bool]:
    """plan.json sorts its keys: without this stages would print alphabetically (a stage's
    shards just before it)."""
    stage = row.removesuffix(" shards")
    return (STAGES.index(stage) if stage in STAGES else len(STAGES)), row == stage


def _rows(plan: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The plan's jobs by the row they count in: a stage's shards apart from its jobs."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for stage, jobs in plan["stages"].items():
        for job in jobs:
            rows.setdefault(row_of(stage, "shard" in job), []).append(job)
    return dict(sorted(rows.items(), key=lambda item: _run_order(item[0])))


def _slots(resources: dict[str, float], cluster: dict[str, float]) -> int:
    fits = [
        math.floor(cluster.get(name, 0.0) / amount)
        for name, amount in resources.items()
        if amount > 0 and name in ("CPU", "GPU")
    ]
    return max(1, min(fits)) if fits else 1


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _scale_estimates(stages: list[StageStatus]) -> None:
    """Each stage's estimates scaled by its finished jobs' actual/estimated time, or by
    all finished jobs' when none of the stage has finished yet."""
    actual = sum(s.actual for s in stages)
    estimated = sum(s.estimated for s in stages)
    overall = actual / estimated if estimated > 0 else 1.0
    for stage in stages:
        stage.ratio = stage.actual / stage.estimated if stage.estimated > 0 else overall


def _stage_status(
    stage: str,
    jobs: list[dict[str, Any]],
    store: StudyStore,
    alive: bool,
    cluster: dict[str, float],
    merged: set[str],
) -> StageStatus:
    """Counts, errors and the time left of one stage, from its jobs' files (`merged`: the
    parents done, whose shards then count as done: they never run)."""
    status = StageStatus(stage)
    seconds = []
    planned: list[float] = []
    for job in jobs:
        result = store.read_result(job["job_id"])
        if result is None and job.get("parent") in merged:
            state, interrupted = "done", False
        else:
            state, interrupted = job_state(store, job["job_id"], result, alive)
        status.counts[state] += 1
        status.interrupted += interrupted
        estimate = job.get("seconds")  # absent from plans written before estimates
        wall = result.get("wall_seconds") if result is not None else None
        if isinstance(wall, (int, float)):
            seconds.append(float(wall))
            if isinstance(estimate, (int, float)) and estimate > 0:
                status.actual += float(wall)
                status.estimated += float(estimate)
        elif state == "failed":
            record = store.read_error(job["job_id"])
            line = record.line if record is not None else "unknown error"
            status.errors.append((job["title"], line))
        if state in ("running", "pending") and isinstance(estimate, (int, float)):
            slots = _slots(job.get("resources", {}), cluster) if cluster else 1
            planned.append(float(estimate) / slots)
    status.mean_seconds = sum(seconds) / len(seconds) if seconds else None
    status.slots = _slots(jobs[0].get("resources", {}), cluster) if cluster else 1
    if len(planned) == status.remaining:  # every job left has an estimate
        status.planned = sum(planned)
    return status


def read_status(study_dir: str | Path, now: float | None = None) -> StudyStatus:
    store = StudyStore(study_dir)
    plan = store.read_plan()
    if plan is None:
        if store.exists("study.yaml"):
            raise UserError(
                f"'{study_dir}' has a study.yaml but no plan.json yet: its driver stopped "
                f"before planning — run `w2s-ray resume {study_dir}`"
            )
        raise UserError(
            f"'{study_dir}' is not a study directory (no plan.json) — pass the directory "
            "`w2s-ray run` wrote, e.g. runs/NAME"
        )
    driver = store.read_driver()
    alive = is_alive(driver, now)
    cluster = dict((driver or {}).get("cluster") or {})
    rows = _rows(plan)
    parents = {job["parent"] for jobs in rows.values() for job in jobs if "parent" in job}
    merged = {job_id for job_id in parents if store.is_done(job_id)}
    stages = [_stage_status(row, jobs, store, alive, cluster, merged) for row, jobs in rows.items()]
    _scale_estimates(stages)
    return StudyStatus(
        name=str(plan.get("study", "?")),
        running=alive,
        driver=driver,
        elapsed_seconds=elapsed_seconds(driver, now or time.time()),
        stages=stages,
    )

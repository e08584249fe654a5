"""Experiment tracking (the spec's `tracking:`): each finished job's config, per-epoch
training losses and results go to MLflow, Weights & Biases and/or TensorBoard, through Ray
Tune's own logger callbacks (w2s_ray.study.tracking_backends).

Jobs run as Ray tasks, not Tune trials (w2s_ray.study.scheduler), so the driver plays
Tune's part once a job is done: it replays the job's `epochs.jsonl` and `result.json` to
each callback as one trial's start, results (iteration = epoch) and end. A thread sends, so
the scheduler never waits on a tracking server. `tracking.jsonl` in the study directory
lists what was sent where; a resumed driver sends what is missing (jobs that finished while
no driver listened, or that a backend could not take) and nothing twice. Tracking never
fails a study: a backend that fails is reported once and the study computes on.
"""

from __future__ import annotations

import importlib.util
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from w2s_ray.errors import UserError
from w2s_ray.spec import StudySpec, TrackingSpec
from w2s_ray.study.epochs import read_epochs
from w2s_ray.study.graph import EVALUATED_STAGES, Job
from w2s_ray.study.store import StudyStore

LEDGER = "tracking.jsonl"
# A backend that fails this many jobs in a row is left alone until the study resumes (a
# dead server would otherwise cost every job its client's retries).
MAX_FAILURES_IN_A_ROW = 3
# (spec key, module the backend needs, what to install)
PACKAGES = (
    ("mlflow", "mlflow", "pip install 'w2s-ray[tracking]' (or mlflow-skinny)"),
    ("tensorboard", "tensorboardX", "pip install 'w2s-ray[tracking]' (or tensorboardX)"),
    ("wandb", "wandb", "pip install 'w2s-ray[wandb]'"),
)
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
Scalar = str | int | float | bool


def require(module: str, key: str, install: str) -> None:
    """A backend whose package is missing fails the study before Ray starts, not later."""
    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"key '{key}': tracking there needs the {module} package, which is not installed "
            f"— {install}"
        )


def check_packages(tracking: TrackingSpec) -> None:
    for key, module, install in PACKAGES:
        if getattr(tracking, key):
            require(module, f"tracking.{key}", install)
    scheme = (tracking.mlflow or "").split(":", 1)[0].split("+", 1)[0]
    if scheme in DATABASE_SCHEMES:  # MLflow's database stores (mlflow-skinny has none)
        for module in ("sqlalchemy", "alembic"):
            require(module, "tracking.mlflow", "pip install sqlalchemy alembic")


def check_destinations(tracking: TrackingSpec, store: StudyStore) -> None:
    """Files the trackers write beside the study need it on this machine's disk."""
    if tracking.tensorboard is True and not store.is_local:
        raise UserError(
            f"key 'tracking.tensorboard': the study directory {store.location} is not on this "
            "machine, so event files cannot go inside it — give a local directory instead"
        )
    if tracking.wandb is not None and tracking.wandb.mode == "offline" and not store.is_local:
        raise UserError(
            f"key 'tracking.wandb.mode': offline runs are kept in the study directory, and "
            f"{store.location} is not on this machine — run the study in a local directory "
            "or use mode: online"
        )


def tracked(job: Job) -> bool:
    """The jobs tracked are the rows of results.parquet: scored jobs, not their shards."""
    return job.stage in EVALUATED_STAGES and job.shard is None


def job_config(job: Job, study: str) -> dict[str, Scalar]:
    """The job's identity flattened ("train.lr"), with what a person filters runs by."""
    config = _flat(job.key)
    named = {
        "study": study,
        "job_id": job.job_id,
        "title": job.title,
        "stage": job.stage,
        "dataset": job.dataset,
        "model": job.model,
        "weak_model": job.weak_model,
        "method": job.method,
        "seed": job.seed,
        "chain": "→".join(job.chain) if job.chain else None,
    }
    config.update({k: v for k, v in named.items() if v is not None})
    return config


def _flat(value: dict[str, Any], prefix: str = "") -> dict[str, Scalar]:
    flat: dict[str, Scalar] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            flat.update(_flat(item, f"{prefix}{key}."))
        elif isinstance(item, (str, int, float, bool)):
            flat[f"{prefix}{key}"] = item
        elif item is not None:  # lists: one value a tracker can show and filter on
            flat[f"{prefix}{key}"] = json.dumps(item, default=str)
    return flat


def job_results(
    epochs: dict[str, dict[int, dict[str, float]]], result: dict[str, Any], config: dict
) -> list[dict[str, Any]]:
    """What Tune would have reported: a result per epoch (each fold's under its tag, e.g.
    `fold0/train_loss`), then the final metrics of result.json at the last epoch."""
    steps = sorted({epoch for by_epoch in epochs.values() for epoch in by_epoch})
    results = []
    for epoch in steps:
        reported: dict[str, Any] = {"training_iteration": epoch}
        for tag, by_epoch in sorted(epochs.items()):
            if epoch in by_epoch:
                if tag:
                    reported[tag.lstrip("-")] = dict(by_epoch[epoch])
                else:
                    reported.update(by_epoch[epoch])
        results.append(reported)
    final = {
        key: value
        for key, value in result.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in config
    }
    results.append({"training_iteration": steps[-1] if steps else 0, **final})
    return results


def read_ledger(store: StudyStore) -> set[tuple[str, str]]:
    """(destination, job id) pairs already sent; a line cut short by a crash is skipped."""
    sent = set()
    for line in (store.read_bytes(LEDGER) or b"").decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
            sent.add((str(record["to"]), str(record["job_id"])))
        except (ValueError, KeyError, TypeError):
            continue
    return sent


def _record_sent(store: StudyStore, destination: str, job_id: str) -> None:
    line = json.dumps({"job_id": job_id, "to": destination, "at": round(time.time(), 3)})
    store.append_text(LEDGER, line + "\n")


class Tracking:
    """Sends finished jobs to the spec's trackers from a thread of the driver; a context
    manager: leaving it sends what is queued and reports what could not be sent."""

    def __init__(
        self, spec: StudySpec, store: StudyStore, jobs: Iterable[Job], warn: Callable[[str], None]
    ) -> None:
        self.spec, self.store, self.warn = spec, store, warn
        self.enabled = spec.tracking.enabled
        self.jobs = {job.job_id: job for job in jobs if tracked(job)}
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._send_all, name="w2s-tracking", daemon=True)
        self.unsent: dict[str, int] = {}  # backend: jobs it did not take this run
        self._warned: set[str] = set()

    def __enter__(self) -> Tracking:
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        self.queue.put(None)
        self.thread.join()
        for name, count in self.unsent.items():
            self.warn(
                f"tracking: {count} finished job(s) were not sent to {name}; resuming the "
                "study (`w2s-ray resume DIR`) sends them"
            )

    def catch_up(self, done: Iterable[str]) -> None:
        """Queue the jobs that finished before this driver listened (the thread skips those
        every tracker already has)."""
        for job_id in done:
            self.on_event(job_id, "done")

    def listen(self, then: Callable[[str, str], None]) -> Callable[[str, str], None]:
        """A scheduler listener that queues each finished job, then calls `then`."""
        if not self.enabled:
            return then

        def listener(job_id: str, status: str) -> None:
            self.on_event(job_id, status)
            then(job_id, status)

        return listener

    def on_event(self, job_id: str, status: str) -> None:
        if self.enabled and status == "done" and job_id in self.jobs:
            self.queue.put(job_id)

    # ---- the sending thread ------------------------------------------------------------
    def _send_all(self) -> None:
        try:
            self._send_queued()
        except Exception as exc:  # tracking must never take the study down with it
            self._failed("tracking", exc)
            while self.queue.get() is not None:  # let the driver's exit find an end
                pass

    def _send_queued(self) -> None:
        from w2s_ray.study.tracking_backends import open_backends

        experiment = self.spec.tracking.experiment or self.spec.name
        backends = open_backends(self.spec.tracking, experiment, self.store)
        sent = read_ledger(self.store)
        in_a_row = dict.fromkeys((b.name for b in backends), 0)
        for backend in backends:
            try:
                backend.setup()
            except Exception as exc:  # e.g. a server that cannot be reached
                in_a_row[backend.name] = MAX_FAILURES_IN_A_ROW
                self._failed(backend.name, exc)
        while (job_id := self.queue.get()) is not None:
            wanted = [b for b in backends if (b.destination, job_id) not in sent]
            if not wanted:
                continue
            job = self.jobs[job_id]
            result = self.store.read_result(job_id)
            if result is None:
                continue  # set aside since (a damaged file): sent when it finishes again
            config = job_config(job, self.spec.name)
            results = job_results(read_epochs(self.store, job_id), result, config)
            for backend in wanted:
                if in_a_row[backend.name] >= MAX_FAILURES_IN_A_ROW:
                    self.unsent[backend.name] = self.unsent.get(backend.name, 0) + 1
                    continue
                try:
                    backend.send(job, config, results)
                except Exception as exc:
                    in_a_row[backend.name] += 1
                    self.unsent[backend.name] = self.unsent.get(backend.name, 0) + 1
                    self._failed(backend.name, exc)
                    continue
                in_a_row[backend.name] = 0
                sent.add((backend.destination, job_id))
                _record_sent(self.store, backend.destination, job_id)
        for backend in backends:
            try:
                backend.close()  # W&B waits for its uploads here
            except Exception as exc:
                self._failed(backend.name, exc)

    def _failed(self, name: str, exc: BaseException) -> None:
        """Warn once per backend: a study of thousands of jobs says it once."""
        if name in self._warned:
            return
        self._warned.add(name)
        first = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        self.warn(f"tracking: {name} failed ({first}); the study goes on without it")

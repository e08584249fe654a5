"""Each epoch's training metrics, kept in the job's folder (`epochs.jsonl`), so experiment
tracking (w2s_ray.study.tracking) can send a loss curve after the job has finished.

A line per epoch: `{"tag": "", "epoch": 1, "train_loss": 0.69}`. `tag` tells apart the
models of a job that trains several (bootstrap folds: "-fold0", ...). A training resumed
from a checkpoint reports its epochs again: readers keep the last line per (tag, epoch).
"""

from __future__ import annotations

import json
from typing import Any

from w2s_ray.study.store import StudyStore
from w2s_ray.train.loop import Reporter

EPOCHS_FILE = "epochs.jsonl"


class EpochLog:
    """A training Reporter that appends each epoch's metrics to the job's `epochs.jsonl`
    (rank 0 builds it), then passes them on to `then` (the fault injector)."""

    def __init__(self, store: StudyStore, job_id: str, tag: str, then: Reporter) -> None:
        self.store, self.tag, self.then = store, tag, then
        self.rel = store.job_file(job_id, EPOCHS_FILE)

    def report(self, metrics: dict[str, float]) -> None:
        # first the record, then the faults: an epoch that was checkpointed is on file
        line = json.dumps({"tag": self.tag, **metrics}, sort_keys=True)
        self.store.append_text(self.rel, line + "\n")
        self.then.report(metrics)


def read_epochs(store: StudyStore, job_id: str) -> dict[str, dict[int, dict[str, float]]]:
    """{tag: {epoch: metrics}}: the last record of each epoch; damaged lines are skipped."""
    data = store.read_bytes(store.job_file(job_id, EPOCHS_FILE)) or b""
    epochs: dict[str, dict[int, dict[str, float]]] = {}
    for line in data.decode(errors="replace").splitlines():
        record = _record(line)
        if record is None:
            continue
        tag, epoch = record.pop("tag"), record.pop("epoch")
        epochs.setdefault(tag, {})[epoch] = record
    return {tag: dict(sorted(by_epoch.items())) for tag, by_epoch in epochs.items()}


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None  # a line cut short when its writer died
    ok = (
        isinstance(record, dict)
        and isinstance(record.get("tag"), str)
        and isinstance(record.get("epoch"), int)
    )
    return record if ok else None

"""Inference over a big pool, split into shard jobs that run on every free device at once.

A parent job (a model's features, a fine-tuned labeler's labels, a weak model's answers)
over more rows than `resources.shard_rows` gets k shards. Shard i computes rows
[i·n//k, (i+1)·n//k) of the exact example list its parent computes and saves them with the
same artifact functions under its own id; the parent then only merges them, checking every
example id, and computes its result as an unsharded job does. Sharding changes no number,
so the parent keeps its id: a study that finished before sharding existed resumes with
nothing to run, and a parent whose output is cached never needs its shards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from w2s_ray.study import artifacts
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.work import Work

T = TypeVar("T")
MERGE = Work()  # a parent with shards only reads and concatenates their outputs: a CPU job


def split(parent: Job, rows: int, shard_rows: int) -> list[Job]:
    """[shards..., parent]: `parent` alone when its `rows` (the spec's caps) fit one job."""
    count = math.ceil(rows / shard_rows)
    if count <= 1:
        return [parent]
    shards = []
    for index in range(count):
        key = {**parent.key, "shard": [index, count]}
        shard = replace(parent, job_id=job_id(parent.stage, key), key=key, shard=(index, count))
        shards.append(shard)
    return [*shards, replace(parent, shards=tuple(s.job_id for s in shards))]


def bounds(n: int, shard: tuple[int, int]) -> tuple[int, int]:
    """[start, end) of shard (index, count) in a list of `n` rows."""
    index, count = shard
    return index * n // count, (index + 1) * n // count


def rows_of(job: Job, examples: list[T]) -> list[T]:
    """The rows `job` computes: its slice for a shard, all of them otherwise."""
    if job.shard is None:
        return examples
    start, end = bounds(len(examples), job.shard)
    return examples[start:end]


def planned_rows(job: Job, rows: int) -> int:
    """The rows of `rows` (a plan-time count) that `job` computes."""
    start, end = bounds(rows, job.shard) if job.shard is not None else (0, rows)
    return end - start


def parent_id(shard: Job) -> str:
    """The id of the job `shard` is a slice of: its key is the parent's plus the slice."""
    return job_id(shard.stage, {k: v for k, v in shard.key.items() if k != "shard"})


def settled(jobs: Iterable[Job], done: set[str]) -> set[str]:
    """`done` and the shards of every done parent: a merged parent (or one that finished
    before it had shards) needs them no more, so they are never run."""
    return done | {shard for job in jobs if job.job_id in done for shard in job.shards}


def shard_record(job: Job) -> dict[str, Any]:
    """What plan.json adds for a shard, so `status` and reports need no job graph."""
    if job.shard is None:
        return {}
    return {"shard": list(job.shard), "parent": parent_id(job)}


def merged_elsewhere(job: Job, cached: Callable[[str], bool]) -> bool:
    """A shard whose parent's output is already `cached` (merged before, or computed whole
    by another study): nothing is left for the shard to compute."""
    return job.shard is not None and cached(parent_id(job))


def intact(job: Job, cached: Callable[[str], bool]) -> bool:
    """What `job` left is readable: its own output, or for a shard its parent's merged one."""
    return cached(job.job_id) or merged_elsewhere(job, cached)


def shard_result(job: Job, rows: int, **extra: Any) -> dict[str, Any]:
    """A shard's result.json: bookkeeping only (a shard is not an evaluated row)."""
    return {**shard_record(job), "n_rows": rows, **extra}


def _parts(
    job: Job,
    ids: list[str],
    load: Callable[[str], tuple[list[str], T] | None],
    path: Callable[[str], Path],
) -> list[T]:
    """Each shard's output in order, checked to hold exactly its slice of `ids`."""
    parts = []
    count = len(job.shards)
    for index, shard in enumerate(job.shards):
        start, end = bounds(len(ids), (index, count))
        name = f"{job.title}: shard {index + 1}/{count} ({shard})"
        loaded = load(shard)
        if loaded is None:
            raise RuntimeError(
                f"{name}: its output {path(shard)} is missing or damaged; rerun the study "
                "to compute that shard again"
            )
        got, part = loaded
        if got != ids[start:end]:
            path(shard).unlink(missing_ok=True)  # the rerun's integrity check then redoes it
            raise RuntimeError(
                f"{name} holds other examples than rows {start}-{end} of the {len(ids)} this "
                "job computes; its output was removed — rerun the study to compute it again"
            )
        parts.append(part)
    return parts


def merged_backend(job: Job, path: Callable[[str], Path]) -> str:
    """The backend(s) that made the shards' outputs: one name, or several joined by "+"
    when shards ran where different backends were usable."""
    names = {artifacts.made_by(path(shard)) for shard in job.shards}
    return "+".join(sorted(n for n in names if n)) or "unknown"


def merged_features(job: Job, ids: list[str]) -> torch.Tensor:
    def load(shard: str) -> tuple[list[str], torch.Tensor] | None:
        loaded = artifacts.load_features(shard)
        return None if loaded is None else (list(loaded[0]), loaded[1])

    parts = _parts(job, ids, load, artifacts.features_path)
    return torch.cat([p for p in parts if p.shape[0]])  # an empty slice has no width


def merged_labels(job: Job, ids: list[str]) -> torch.Tensor:
    """[n, 2] probabilities whose P(1) column is the shards' stored values, bit for bit."""

    def load(shard: str) -> tuple[list[str], torch.Tensor] | None:
        soft = artifacts.load_labels(shard)
        if soft is None:
            return None
        return list(soft), torch.tensor(list(soft.values()), dtype=torch.float64)

    p1 = torch.cat(_parts(job, ids, load, artifacts.labels_path))
    return torch.stack([1 - p1, p1], dim=1)


def merged_answers(job: Job, ids: list[str]) -> dict[str, str]:
    def load(shard: str) -> tuple[list[str], dict[str, str]] | None:
        written = artifacts.load_answers(shard)
        return None if written is None else (list(written), written)

    merged: dict[str, str] = {}
    for part in _parts(job, ids, load, artifacts.answers_path):
        merged.update(part)
    return merged

"""Before a study (re)starts: finished jobs whose files are damaged or gone run again.

A job counts as finished when its `result.json` reads back. Two things can make that
wrong: the result file itself is damaged (then the job simply has not finished), or what
the job left for later jobs — weak labels, features, weights, a fine-tuned model, mostly
kept in the shared cache — is missing or damaged while a job that needs it has still to
run. Either way the job goes back to run again, its old result set aside as
`result.json.damaged` or `result.json.stale`, so nothing is trusted that cannot be read.
"""

from __future__ import annotations

import json
import struct
from typing import BinaryIO

from w2s_ray.study import artifacts, sharding
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.store import StudyStore

RESULT = "result.json"


def safetensors_intact(handle: BinaryIO, size: int) -> bool:
    """Whether a safetensors file's header parses and its tensors end where the file does
    (a truncated or overwritten file fails), without reading the tensors."""
    if size < 8:
        return False
    (header_len,) = struct.unpack("<Q", handle.read(8))
    if header_len > size - 8:
        return False
    try:
        header = json.loads(handle.read(header_len))
        ends = [entry["data_offsets"][1] for k, entry in header.items() if k != "__metadata__"]
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
        return False
    return 8 + header_len + max(ends, default=0) == size


def store_weights_intact(store: StudyStore, rel: str) -> bool:
    info = store.fs.get_file_info(store.file_path(rel))
    if info.size is None:
        return False
    with store.fs.open_input_file(store.file_path(rel)) as handle:
        return safetensors_intact(handle, info.size)


def cached_features_intact(job_id: str) -> bool:
    path = artifacts.features_path(job_id)
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return safetensors_intact(handle, path.stat().st_size)


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool = True) -> bool:
    """Whether what `job` left for the jobs after it can still be read (its stage knows
    what that is). A driver that does not see the cluster's cache (attached over `ray://`)
    checks only the study's files."""
    from w2s_ray.study.stages import stage_of

    return stage_of(job).outputs_intact(job, study, store, sees_cache)


def _set_aside(store: StudyStore, job_id: str, suffix: str) -> None:
    data = store.read_bytes(store.job_file(job_id, RESULT))
    if data is not None:
        store.write_bytes(store.job_file(job_id, f"{RESULT}.{suffix}"), data)
    store.delete(store.job_file(job_id, RESULT))


def send_back_broken_jobs(
    jobs: list[Job], study: Study, store: StudyStore, sees_cache: bool = True
) -> list[str]:
    """Set aside the results of finished jobs that must run again; their titles, with why."""
    by_id = {job.job_id: job for job in jobs}
    notes: list[str] = []
    done = {job.job_id for job in jobs if store.is_done(job.job_id)}  # each read once
    settled = sharding.settled(jobs, done)
    for job in jobs:
        if job.job_id not in settled and store.exists(store.job_file(job.job_id, RESULT)):
            _set_aside(store, job.job_id, "damaged")
            notes.append(f"{job.title}: its result.json is damaged; running it again")
    # a dependency is checked only while a job that reads it has still to run (a done
    # parent's shards never run); a job sent back may need its own inputs rebuilt, so
    # repeat until nothing more is sent back
    intact: set[str] = set()
    while True:
        settled = sharding.settled(jobs, done)
        needed = {dep for job in jobs if job.job_id not in settled for dep in job.deps}
        to_check = sorted((needed & done) - intact)
        broken = [
            by_id[dep]
            for dep in to_check
            if not outputs_intact(by_id[dep], study, store, sees_cache)
        ]
        if not broken:
            return notes
        intact |= set(to_check) - {job.job_id for job in broken}
        for job in broken:
            _set_aside(store, job.job_id, "stale")
            done.discard(job.job_id)
            notes.append(
                f"{job.title}: what it left for later jobs is missing or damaged; running it again"
            )

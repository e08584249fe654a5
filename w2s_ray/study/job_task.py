"""What a scheduler task does in its Ray worker: run study jobs and record how each ended.

Every job writes its own `result.json` atomically or a typed `error.json`, so a batch of
short jobs that dies halfway keeps the jobs it finished, and each job resumes on its own.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from dataclasses import dataclass

from w2s_ray.errors import UserError
from w2s_ray.study.graph import Job
from w2s_ray.study.outcome import JobError
from w2s_ray.study.resolve import Study
from w2s_ray.study.resources import WorkerPlan
from w2s_ray.study.store import StudyStore

log = logging.getLogger(__name__)

# Errors that name a problem with the study's inputs (a user error, a diverging loss).
DETERMINISTIC_ERRORS = (UserError, FloatingPointError)


@dataclass(frozen=True)
class JobPayload:
    job: Job
    workers: WorkerPlan | None  # Ray Train workers for a fine-tune too big for one device


@dataclass(frozen=True)
class StudyExecutor:
    """Picklable: shipped once to the cluster, called with each task's payloads."""

    study: Study
    study_dir: str

    def __call__(self, payloads: list[JobPayload]) -> list[JobError | None]:
        _use_assigned_cpus()
        store = StudyStore(self.study_dir)
        return [self._run_one(p, store) for p in payloads]

    def _run_one(self, payload: JobPayload, store: StudyStore) -> JobError | None:
        from w2s_ray.study.writes import is_write_failure, write_failure

        job = payload.job
        if store.is_done(job.job_id):
            return None
        try:
            store.mark_started(job.job_id)
            if payload.workers is None:
                from w2s_ray.study.execute import run_job

                run_job(job, self.study, store)
            else:
                from w2s_ray.study.distributed import run_job_on_workers

                run_job_on_workers(job, self.study, store, payload.workers)
        except DETERMINISTIC_ERRORS as exc:
            error = JobError.of(exc, "user")  # running it again would fail the same way
        except OSError as exc:
            if is_write_failure(exc, store):  # a retry would train again only to fail to save
                error = JobError.of(write_failure(exc, store), "write")
            else:
                error = JobError.of(exc, "crash", traceback.format_exc())
        except Exception as exc:  # maybe the machine's fault: the scheduler retries it
            error = JobError.of(exc, "crash", traceback.format_exc())
        else:
            return None
        finally:
            _release_device_memory()
        with contextlib.suppress(OSError):  # on a full disk the error file may not fit either
            store.write_error(job.job_id, error)
        return error


def _use_assigned_cpus() -> None:
    """torch uses exactly the CPUs Ray assigned this task (pooled workers run many tasks)."""
    import ray
    import torch

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))


def _release_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()

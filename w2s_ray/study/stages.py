"""Stage runners: Ray Tune Tuners per stage, one trial per job. The only Ray Tune code.

A stage's Tuner lives in `tune/<stage>` under the study directory. When the study is
resumed that Tuner is restored (unfinished and errored trials run again), and jobs it
does not cover (new, or failed for a reason the user may since have fixed) run in a
further Tuner, `tune/<stage>-2` and so on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

import ray
from ray import tune

from w2s_ray.errors import UserError
from w2s_ray.study.distributed import run_job_on_workers
from w2s_ray.study.execute import run_job
from w2s_ray.study.plan import Job, Study
from w2s_ray.study.resources import WorkerPlan, job_resources, worker_plan
from w2s_ray.study.store import StudyStore
from w2s_ray.study.writes import is_write_failure, write_failure

log = logging.getLogger(__name__)

# Errors that name a problem with the study's inputs (a user error, a diverging loss).
DETERMINISTIC_ERRORS = (UserError, FloatingPointError)
# Trial crashes Tune retries before the job counts as failed (a preempted node, an OOM kill).
MAX_FAILURES = 2

Listener = Callable[[str, str], None]
_listener: Listener | None = None  # the driver's progress display, while a stage runs


def _job_trial(
    config: dict[str, Any],
    jobs: dict[str, Job],
    workers: dict[str, WorkerPlan | None],
    study: Study,
    study_dir: str,
) -> None:
    """Run one job inside a Tune trial, with torch using exactly the CPUs Ray assigned."""
    import torch

    job = jobs[config["job_id"]]
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    store = StudyStore(study_dir)
    if not store.is_done(job.job_id):
        plan = workers[job.job_id]  # decided by the driver, with the trial's resources
        try:
            store.mark_started(job.job_id)
            if plan is None:
                run_job(job, study, store)
            else:
                run_job_on_workers(job, study, store, plan)
        except DETERMINISTIC_ERRORS as exc:
            # Running it again would fail the same way: record it and end the trial.
            store.write_error(job.job_id, f"{type(exc).__name__}: {exc}")
            tune.report({"done": 0.0})
            return
        except OSError as exc:
            if not is_write_failure(exc, store):
                raise
            # A full or read-only disk: a retry would train again only to fail to save.
            failure = write_failure(exc, store)
            with contextlib.suppress(OSError):  # the error file may not fit either
                store.write_error(job.job_id, f"{type(failure).__name__}: {failure}")
            tune.report({"done": 0.0})
            return
        except Exception as exc:
            store.write_error(
                job.job_id, f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
            )
            raise  # Tune retries it: a crash may be the machine's fault, not the job's
    tune.report({"done": 1.0})


class ProgressCallback(tune.Callback):
    """Forwards trial starts and ends to whichever driver display is listening.

    Tune pickles callbacks into its experiment state and a restored Tuner brings back
    those copies, so the callback holds no display of its own: it looks up the current one.
    """

    def _emit(self, trial: Any, status: str) -> None:
        if _listener is not None:
            _listener(trial.config["job_id"], status)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._emit(trial, "running")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        finished = (trial.last_result or {}).get("done") == 1.0
        self._emit(trial, "done" if finished else "failed")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._emit(trial, "failed")


def _trainable(by_id: dict[str, Job], study: Study, store: StudyStore) -> Any:
    cluster = ray.cluster_resources()
    requests = {job_id: job_resources(job, study, cluster) for job_id, job in by_id.items()}
    plans = {job_id: worker_plan(job, study, cluster) for job_id, job in by_id.items()}
    trainable = tune.with_parameters(
        _job_trial, jobs=by_id, workers=plans, study=study, study_dir=store.location
    )
    return tune.with_resources(
        trainable, lambda config: tune.PlacementGroupFactory([requests[config["job_id"]]])
    )


def _generations(store: StudyStore, stage: str) -> list[str]:
    """Names of this stage's Tuners (`stage`, `stage-2`, ...), oldest first."""
    found = set(store.subdirs("tune"))
    ordered = []
    while (name := stage if not ordered else f"{stage}-{len(ordered) + 1}") in found:
        ordered.append(name)
    return ordered


def _manifest(store: StudyStore, generation: str) -> list[str]:
    data = store.read_bytes(f"tune/{generation}.jobs.json")
    try:
        return json.loads(data) if data is not None else []
    except ValueError:
        return []


def _restore(store: StudyStore, generation: str, trainable: Any) -> bool:
    """Finish a Tuner an interrupted driver left; False if there is nothing to restore."""
    path = store.uri("tune", generation)
    if not tune.Tuner.can_restore(path):
        return False  # killed before Tune saved its first state: its jobs start afresh
    try:
        tuner = tune.Tuner.restore(
            path, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    except Exception as exc:  # a damaged experiment state must not sink the study
        log.warning("cannot restore %s (%s); running its jobs in a new Tuner", generation, exc)
        return False
    tuner.fit()
    return True


def run_stage(
    stage: str,
    stage_jobs: list[Job],
    runnable: set[str],
    study: Study,
    store: StudyStore,
    on_event: Listener,
) -> None:
    """Run the `runnable` jobs of a stage; failures are recorded per job, not raised."""
    global _listener
    todo = {job.job_id for job in stage_jobs if job.job_id in runnable}
    todo = {j for j in todo if not store.is_done(j)}
    if not todo:
        return
    every = {job.job_id: job for job in stage_jobs}  # a restored grid may hold finished jobs
    started: set[str] = set()

    def listen(job_id: str, status: str) -> None:
        if status == "running":
            started.add(job_id)
        on_event(job_id, status)

    _listener = listen
    try:
        generations = _generations(store, stage)
        for generation in generations:
            grid = set(_manifest(store, generation))
            if grid & todo and grid <= every.keys():
                _restore(store, generation, _trainable({j: every[j] for j in grid}, study, store))
        # Jobs no restored Tuner ran: new ones, and those that failed before for a reason
        # (missing access, a bad file) that rerunning the study is meant to retry.
        rest = sorted(j for j in todo if j not in started and not store.is_done(j))
        if rest:
            name = stage if not generations else f"{stage}-{len(generations) + 1}"
            _fit_new(name, {j: every[j] for j in rest}, study, store)
    finally:
        _listener = None


def _fit_new(name: str, by_id: dict[str, Job], study: Study, store: StudyStore) -> None:
    store.write_json(f"tune/{name}.jobs.json", sorted(by_id))
    tuner = tune.Tuner(
        _trainable(by_id, study, store),
        param_space={"job_id": tune.grid_search(sorted(by_id))},
        tune_config=tune.TuneConfig(reuse_actors=False),
        run_config=tune.RunConfig(
            name=name,
            storage_path=store.uri("tune"),
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            callbacks=[ProgressCallback()],
            verbose=0,
        ),
    )
    tuner.fit()

"""Stage runners: one Ray Tune Tuner per stage, one trial per job. The only Ray Tune code."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import tune

from w2s_ray.errors import UserError
from w2s_ray.study.execute import run_job
from w2s_ray.study.plan import Job, Study
from w2s_ray.study.resources import job_resources
from w2s_ray.study.store import StudyStore

# Errors that name a problem with the study's inputs (a user error, a diverging loss).
DETERMINISTIC_ERRORS = (UserError, FloatingPointError)


def _job_trial(config: dict[str, Any], jobs: dict[str, Job], study: Study, study_dir: str) -> None:
    """Run one job inside a Tune trial, with torch using exactly the CPUs Ray assigned."""
    import torch

    job = jobs[config["job_id"]]
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    store = StudyStore(Path(study_dir))
    if not store.is_done(job.job_id):
        try:
            run_job(job, study, store)
        except DETERMINISTIC_ERRORS as exc:
            # Running it again would fail the same way: record it and end the trial.
            store.write_error(job.job_id, f"{type(exc).__name__}: {exc}")
            tune.report({"done": 0.0})
            return
        except Exception as exc:
            store.write_error(
                job.job_id, f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
            )
            raise  # Tune retries it: a crash may be the machine's fault, not the job's
    tune.report({"done": 1.0})


class ProgressCallback(tune.Callback):
    """Forwards trial starts and ends to the driver's live display."""

    def __init__(self, on_event: Callable[[str, str], None]) -> None:
        self.on_event = on_event

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state; the display is not picklable
        # and means nothing after a restore, so it is left behind.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.on_event = lambda job_id, status: None

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.on_event(trial.config["job_id"], "running")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        finished = (trial.last_result or {}).get("done") == 1.0
        self.on_event(trial.config["job_id"], "done" if finished else "failed")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.on_event(trial.config["job_id"], "failed")


def run_stage(
    stage: str,
    jobs: list[Job],
    study: Study,
    store: StudyStore,
    on_event: Callable[[str, str], None],
    max_failures: int = 1,
) -> None:
    """Run `jobs` as trials of one Tuner; failures are recorded per job, not raised."""
    cluster = ray.cluster_resources()
    by_id = {job.job_id: job for job in jobs}
    requests = {job.job_id: job_resources(job, study, cluster) for job in jobs}
    trainable = tune.with_parameters(_job_trial, jobs=by_id, study=study, study_dir=str(store.root))
    trainable = tune.with_resources(
        trainable, lambda config: tune.PlacementGroupFactory([requests[config["job_id"]]])
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"job_id": tune.grid_search(sorted(by_id))},
        tune_config=tune.TuneConfig(reuse_actors=False),
        run_config=tune.RunConfig(
            name=stage,
            storage_path=str((store.root / "tune").resolve()),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            callbacks=[ProgressCallback(on_event)],
            verbose=0,
        ),
    )
    tuner.fit()

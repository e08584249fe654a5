"""Ray Tune's own logger callbacks (MLflow, W&B, TensorBoardX), fed one finished job at a
time as if it were a Tune trial (w2s_ray.study.tracking decides what and when)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.logger import LoggerCallback

from w2s_ray.spec import TrackingSpec
from w2s_ray.study.graph import Job
from w2s_ray.study.store import StudyStore


class JobTrial(Trial):
    """A real Tune Trial standing for one job: its id is the job's, its name the job's
    title, its config the job's; its folder (TensorBoard's event files, W&B's offline run)
    is the one the tracker asked for, not Tune's staging directory."""

    def __init__(self, job: Job, config: dict[str, Any], folder: Path | None, group: str):
        super().__init__(
            "w2s-ray",
            config=config,
            trial_id=job.job_id,
            evaluated_params=config,  # TensorBoard's hparams show these
            trial_name_creator=lambda _: job.title,
            stub=True,  # no trainable: the job ran as a Ray task of its own
        )
        self._folder, self._group = folder, group

    @property
    def local_path(self) -> str | None:
        return None if self._folder is None else str(self._folder)

    @property
    def experiment_dir_name(self) -> str:
        return self._group  # W&B's group when none is given

    def init_local_path(self) -> None:
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)


@dataclass
class Backend:
    """One tracker: `destination` names where it sends (the ledger's key, no secrets)."""

    name: str
    destination: str
    make: Callable[[], LoggerCallback]
    folder: Callable[[str], Path | None] = lambda job_id: None
    environment: dict[str, str] = field(default_factory=dict)  # set while it sets up
    group: str = ""
    callback: LoggerCallback | None = None

    def setup(self) -> None:
        with _environment(self.environment):
            self.callback = self.make()
            self.callback.setup()

    def send(self, job: Job, config: dict[str, Any], results: list[dict[str, Any]]) -> None:
        """A trial's whole life: start (config), a result per epoch and the final one, end."""
        assert self.callback is not None, "setup() first"
        trial = JobTrial(job, config, self.folder(job.job_id), self.group)
        trial.init_local_path()
        self.callback.log_trial_start(trial)
        for result in results:
            self.callback.log_trial_result(result["training_iteration"], trial, result)
        self.callback.log_trial_end(trial, failed=False)

    def close(self) -> None:
        if self.callback is not None:
            self.callback.on_experiment_end(trials=[])


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def open_backends(tracking: TrackingSpec, experiment: str, store: StudyStore) -> list[Backend]:
    """The trackers the spec asks for, not yet set up (their packages were checked)."""
    backends = []
    if tracking.mlflow:
        uri = tracking.mlflow

        def mlflow() -> LoggerCallback:
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            if uri.startswith("file:"):
                # MLflow 3 keeps its file store only on request (it suggests sqlite); a study
                # that names one requests it. Every later client builds the store again, so
                # this stays set for the driver's life.
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

            return MLflowLoggerCallback(uri, experiment_name=experiment)

        backends.append(Backend("mlflow", f"mlflow {uri} {experiment}", mlflow))
    if tracking.tensorboard:
        tb_root = (
            store.root / "tensorboard"
            if tracking.tensorboard is True
            else Path(tracking.tensorboard)
        )

        def tensorboard() -> LoggerCallback:
            from ray.tune.logger import TBXLoggerCallback

            return TBXLoggerCallback()

        backends.append(
            Backend(
                "tensorboard",
                f"tensorboard {tb_root}",
                tensorboard,
                folder=lambda job_id: tb_root / job_id,
            )
        )
    if tracking.wandb is not None:
        wandb = tracking.wandb
        # offline runs stay in the study directory (`wandb sync` uploads them later); an
        # online run's local copy is scratch
        wb_root = (
            store.root / "wandb"
            if store.is_local
            else Path(tempfile.gettempdir()) / "w2s-ray-wandb" / experiment
        )
        options = {"mode": wandb.mode, **({"entity": wandb.entity} if wandb.entity else {})}

        def weights_and_biases() -> LoggerCallback:
            from ray.air.integrations.wandb import WandbLoggerCallback

            return WandbLoggerCallback(project=wandb.project, group=experiment, **options)

        backends.append(
            Backend(
                "wandb",
                f"wandb {wandb.entity or ''}/{wandb.project}",
                weights_and_biases,
                folder=lambda job_id: wb_root / job_id,
                # Ray's W&B setup asks for an API key unless the mode says offline
                environment={"WANDB_MODE": wandb.mode},
            )
        )
    for backend in backends:
        backend.group = experiment
    return backends

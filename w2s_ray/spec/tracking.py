"""`tracking:`: where jobs' configs and metrics are also sent (MLflow, W&B, TensorBoard)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from w2s_ray.spec.base import PathFromHere, Strict, absolute_path


def _tracking_uri(uri: str) -> str:
    # credentials belong in MLflow's environment variables, never in study.yaml (saved in
    # the study directory); a local store is made absolute like every path of the study
    _, sep, rest = uri.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        raise ValueError(
            "the URI holds credentials — remove them and set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment instead"
        )
    if uri.startswith("file:"):
        return Path(absolute_path(uri.removeprefix("file:").removeprefix("//"))).as_uri()
    return uri if sep or ":" in uri.split("/", 1)[0] else Path(absolute_path(uri)).as_uri()


class WandbSpec(Strict):
    """A Weights & Biases project; `offline` keeps the runs on disk for `wandb sync`. The API
    key comes from `wandb login` or WANDB_API_KEY, never from the study file."""

    project: str = Field(min_length=1)
    entity: str | None = Field(default=None, min_length=1)
    mode: Literal["online", "offline"] = "online"


class TrackingSpec(Strict):
    """Where each finished job's config, per-epoch losses and results are also sent (see
    w2s_ray.study.tracking); every key is optional and tracking changes no number.

    `mlflow`: a tracking URI (`file:./mlruns`, `http://host:5000`); `experiment`: the MLflow
    experiment (default: the study's name; also the W&B group); `wandb`: a project;
    `tensorboard`: true (event files in `<study dir>/tensorboard`) or a directory.
    """

    mlflow: Annotated[str, Field(min_length=1), AfterValidator(_tracking_uri)] | None = None
    experiment: str | None = Field(default=None, min_length=1)
    wandb: WandbSpec | None = None
    tensorboard: bool | PathFromHere = False

    @field_validator("tensorboard", mode="before")
    @classmethod
    def _true_or_directory(cls, value: Any) -> Any:
        if not isinstance(value, (bool, str)):
            raise ValueError("give true, false or a directory for the event files")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.mlflow or self.wandb or self.tensorboard)

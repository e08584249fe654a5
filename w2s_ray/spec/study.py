"""StudySpec: the study YAML as pydantic models (models, datasets, training, data, baselines,
resources); methods and tracking have modules of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Discriminator, Field, Tag, field_validator

from w2s_ray.spec.base import PathFromHere, Strict
from w2s_ray.spec.methods import MethodSpec
from w2s_ray.spec.tracking import TrackingSpec
from w2s_ray.truncation import TooLong


class LocalModel(Strict):
    """A model folder on disk (save_pretrained layout) added to the ladder."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: PathFromHere
    pretrain_tokens: float = Field(gt=0)
    lr: float | None = Field(default=None, gt=0)


class HubModel(Strict):
    """A registered hub model pinned to a revision: a commit, tag or branch of its repo."""

    name: str = Field(pattern=r"^[A-Za-z0-9_./-]+$")
    revision: str = Field(min_length=1)


class HubDataset(Strict):
    """A registered hub dataset pinned to a revision of its repo (for tasks read from the
    hub's parquet conversion, a commit of its `refs/convert/parquet` branch)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    revision: str = Field(min_length=1)


class LocalDataset(Strict):
    """A jsonl/csv/parquet file with `text`, `label` (0/1) and optionally `group`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: PathFromHere


def _entry_kind(local: type[BaseModel], hub: type[BaseModel]) -> Callable[[Any], str]:
    """Which form a `models`/`datasets` entry takes, told by its keys, so that a mistake is
    reported against that form alone (not once per form it failed to be)."""

    def kind(value: Any) -> str:
        if isinstance(value, BaseModel):
            return type(value).__name__
        if isinstance(value, dict):
            return hub.__name__ if "revision" in value and "path" not in value else local.__name__
        return "str"

    return kind


ModelEntry = Annotated[
    Annotated[str, Tag("str")]
    | Annotated[LocalModel, Tag("LocalModel")]
    | Annotated[HubModel, Tag("HubModel")],
    Discriminator(_entry_kind(LocalModel, HubModel)),
]
DatasetEntry = Annotated[
    Annotated[str, Tag("str")]
    | Annotated[LocalDataset, Tag("LocalDataset")]
    | Annotated[HubDataset, Tag("HubDataset")],
    Discriminator(_entry_kind(LocalDataset, HubDataset)),
]


class LoraSpec(Strict):
    """Low-rank adapters (LoRA, Hu et al. 2021) in place of full fine-tuning: the backbone
    stays frozen, adapters of `rank` scaled by `alpha / rank` train on `target_modules`
    (None: the model family's default, w2s_ray.train.lora) along with the linear head.
    `dropout` acts on the adapters' inputs only while training in train mode
    (`train.dropout: true`); the reference recipe trains in eval mode."""

    rank: int = Field(default=8, gt=0)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=1
    )

    def describe(self) -> str:
        """One line for the rows of the models it trained."""
        targets = "+".join(self.target_modules) if self.target_modules else "family default"
        return f"rank={self.rank},alpha={self.alpha:g},dropout={self.dropout:g},{targets}"


class TrainSpec(Strict):
    epochs: int | None = Field(default=None, gt=0)  # None: the mode's default
    lr: float | None = Field(default=None, gt=0)  # None: probe default or the model card's
    batch_size: int | None = Field(default=None, gt=0)
    # Tokens per input; None: each dataset's own (`w2s-ray list datasets`), within the
    # smallest context of the ladder. Longer inputs follow `data.too_long`.
    max_length: int | None = Field(default=None, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    # The reference code's recipe by default: dropout off while fine-tuning, a cosine
    # schedule without warm-up, no gradient clipping. `dropout: true` trains in train mode;
    # `warmup_frac` is the learning rate's linear warm-up (not logconf's, which is a loss
    # option); `grad_clip` caps the global gradient norm.
    dropout: bool = False
    warmup_frac: float = Field(default=0.0, ge=0, lt=1)
    grad_clip: float | None = Field(default=None, gt=0)
    # Workers per fine-tune (Ray Train, one device each); None: as many as the model's card
    # asks for on a GPU cluster, else one. Results match one worker up to float rounding.
    workers: int | None = Field(default=None, gt=0)
    strategy: Literal["ddp", "fsdp"] = "ddp"
    # LoRA adapters instead of full fine-tuning (finetune mode, DDP); None: every weight trains.
    # Applies to every classifier fine-tune (ceilings, weak supervisors, rungs, students).
    lora: LoraSpec | None = None


class GenerativeSpec(Strict):
    """Language-model fine-tuning before weak-label training (methods with `generative`)."""

    epochs: int = Field(default=1, gt=0)
    lr: float | None = Field(default=None, gt=0)  # None: the model card's fine-tuning rate


class DataSpec(Strict):
    n_train: int | None = Field(default=2000, gt=0)
    n_test: int | None = Field(default=1000, gt=0)
    test_fraction: float = Field(default=0.25, gt=0, lt=1)
    balance: bool = True
    # Inputs over max_length tokens: keep their last tokens (where QA tasks put the question
    # and answer), drop them (the reference code's rule), or refuse the study.
    too_long: TooLong = "keep_end"


class PromptSpec(Strict):
    """How tasks are put to a prompted model; default: a format per dataset."""

    instruction: str = Field(min_length=1)
    answer_prefix: str = "Answer:"
    choices: tuple[str, str] = (" No", " Yes")  # continuations meaning label 0, label 1


class BaselineSpec(Strict):
    """Zero- and few-shot prompting of every strong decoder (encoders cannot be prompted).

    `k: [0, 8]` runs zero-shot and 8-shot; demonstrations come from the student half,
    shown with ground-truth labels (`gt`) or a weak supervisor's (`weak`).
    """

    enabled: bool = True
    k: list[Annotated[int, Field(ge=0, le=64)]] = Field(default_factory=lambda: [0, 8])
    labels: list[Literal["gt", "weak"]] = Field(default_factory=lambda: ["gt", "weak"])
    n_test: int | None = Field(default=None, gt=0)  # None: the whole test set
    max_prompt_tokens: int = Field(default=1024, ge=32)  # also capped by the model's context
    prompt: PromptSpec | None = None

    @field_validator("k", "labels")
    @classmethod
    def _unique(cls, value: list[Any]) -> list[Any]:
        return sorted(set(value), key=value.index)


class ResourcesSpec(Strict):
    """How jobs share a cluster's devices (results do not depend on it).

    A job that needs one GPU asks for the share of it that its estimated memory takes
    (w2s_ray.study.cost), so small models run several to a device. `gpu_memory_gb`: each
    GPU's memory in GiB; `jobs_per_gpu`: at most this many jobs share one (1: every job
    takes whole GPUs). CPU-only clusters are unaffected. `shard_rows`: an inference job
    over more rows than this (features, a fine-tuned labeler's labels, weak answers) is
    split into shard jobs of about this many rows that run on any free devices at once,
    then merged; the merged output is what one job computes. `activation_checkpointing`:
    classifier fine-tunes recompute each block's activations in the backward pass instead
    of keeping them (about a third more compute, a fraction of the activation memory).
    """

    gpu_memory_gb: float = Field(default=80.0, gt=0)
    jobs_per_gpu: int = Field(default=4, ge=1, le=8)
    shard_rows: int = Field(default=8192, ge=1)
    activation_checkpointing: bool = False


class InferenceSpec(Strict):
    backend: str = "auto"  # auto | vllm | transformers (see `w2s-ray list backends`)


class StudySpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    datasets: list[DatasetEntry] = Field(min_length=1)
    models: list[ModelEntry] = Field(min_length=2)  # the ladder, any order
    # (weak, strong); default: every pair whose strong model has more effective compute
    pairs: list[tuple[str, str]] | None = Field(default=None, min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    mode: Literal["probe", "finetune"] = "probe"
    methods: list[MethodSpec] = Field(
        default_factory=lambda: [MethodSpec(name="xent")], min_length=1
    )
    train: TrainSpec = Field(default_factory=TrainSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    baselines: BaselineSpec = Field(default_factory=BaselineSpec)
    generative: GenerativeSpec = Field(default_factory=GenerativeSpec)
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    trust_remote_code: bool = False

    @field_validator("methods", mode="before")
    @classmethod
    def _method_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("seeds", "models", "datasets", "methods")
    @classmethod
    def _no_duplicates(cls, value: list[Any]) -> list[Any]:
        keys = [v if isinstance(v, (str, int)) else v.name for v in value]
        dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"listed twice: {', '.join(dupes)} — list each once")
        return value

    @field_validator("methods")
    @classmethod
    def _distinct_row_names(cls, value: list[MethodSpec]) -> list[MethodSpec]:
        """An iterated method's rows are `<name>_r<round>`: no other method may be named so."""
        names = {m.name for m in value}
        for method in value:
            clash = [method.row_name(r) for r in range(1, method.rounds + 1)]
            taken = sorted(names.intersection(clash))
            if method.rounds > 1 and taken:
                raise ValueError(
                    f"method '{method.name}' has {method.rounds} rounds, reported as "
                    f"{', '.join(clash)}, but '{taken[0]}' is another method's name — rename one"
                )
        return value

    def model_names(self) -> list[str]:
        return [m if isinstance(m, str) else m.name for m in self.models]

    def dataset_names(self) -> list[str]:
        return [d if isinstance(d, str) else d.name for d in self.datasets]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

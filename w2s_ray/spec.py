"""StudySpec: the study YAML as pydantic models, and errors a person can act on.

Parsing checks types and keys; `resolve` checks names against the registries and the ladder
order, so every mistake surfaces before any compute starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from w2s_ray.errors import UserError
from w2s_ray.registry import suggest
from w2s_ray.truncation import TooLong


def _absolute(path: str) -> str:
    # Ray Tune runs each job in a directory of its own, so a relative path would point
    # somewhere else there; relative paths mean the directory the study is started from.
    return str(Path(path).expanduser().absolute())


PathFromHere = Annotated[str, Field(min_length=1), AfterValidator(_absolute)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeakLabelSpec(_Strict):
    """What happens to a student's weak labels before it learns them, in this order.

    `ensemble_seeds`: the pair's weak model is trained this many times on its own half (the
    same examples, a different training seed each) and the members' labels are averaged;
    `ensemble_models`: other ladder models' labels of the same examples are averaged in (a
    pair whose strong model is not above every member is skipped). `probe`: a kNN or
    logistic-regression probe on the strong model's own frozen features, fitted to the weak
    labels out of sample (kNN leaves each example out of its own neighbours; logistic
    regression is cross-fitted over 4 folds), then `probe_use: relabel` trains the student on
    the probe's predictions and `filter` drops the `filter_fraction` of examples whose weak
    label the probe contradicts most (EleutherAI's w2s). `drop_least_confident`: the
    fraction of examples whose label is closest to 0.5 is left out.
    """

    ensemble_seeds: int = Field(default=1, ge=1, le=16)
    ensemble_models: list[str] = Field(default_factory=list)
    probe: Literal["knn", "logreg"] | None = None
    probe_use: Literal["relabel", "filter"] = "relabel"
    k: int = Field(default=50, ge=1)  # kNN neighbours (EleutherAI's default)
    l2: float = Field(default=1e-3, ge=0)  # logistic regression's L2 penalty (theirs)
    filter_fraction: float = Field(default=0.1, gt=0, lt=1)  # their `contamination`
    drop_least_confident: float = Field(default=0.0, ge=0, lt=1)

    @field_validator("ensemble_models")
    @classmethod
    def _unique_members(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a model is listed twice — list each once")
        return value

    def changes_labels(self) -> bool:
        """False for the settings that leave the weak labels as they are."""
        return (
            self.ensemble_seeds > 1
            or bool(self.ensemble_models)
            or self.probe is not None
            or self.drop_least_confident > 0
        )

    def identity(self) -> dict[str, Any]:
        """What changes the processed labels (unused options of a switch left out)."""
        key: dict[str, Any] = {}
        if self.ensemble_seeds > 1:
            key["ensemble_seeds"] = self.ensemble_seeds
        if self.ensemble_models:
            key["ensemble_models"] = sorted(self.ensemble_models)
        if self.probe is not None:
            key["probe"] = [self.probe, self.probe_use]
            key["probe_setting"] = self.k if self.probe == "knn" else self.l2
            if self.probe_use == "filter":
                key["filter_fraction"] = self.filter_fraction
        if self.drop_least_confident > 0:
            key["drop_least_confident"] = self.drop_least_confident
        return key


class MethodSpec(_Strict):
    """How students learn from weak labels: a loss from the registry and its options, how
    the final weights are chosen, and whether labels climb the ladder one rung at a time.

    `select`: `last` keeps the last epoch's weights; `weak_val` holds out `val_fraction` of
    the student half, labeled by the weak supervisor only, and keeps the epoch that agrees
    with those labels best (no ground truth is seen); `oracle` does the same against the
    held-out examples' true labels, an upper bound that a real user could not run.
    `options_by_model`: loss options for one strong model, merged over `options` when that
    model is the student (or a bootstrap rung) — the paper's larger α_max for its largest
    students, e.g. `{gpt2-xl: {aux_max: 0.75}}`.
    `bootstrap`: a weak → strong pair is trained through every ladder model between them,
    each step's student relabeling the student half for the next (Burns et al. 2023, 4.3.1).
    `weak_labels`: ensembles, probes and confidence filters applied to the weak labels first
    (WeakLabelSpec). `rounds`: strong-to-strong iteration; round r's row is method
    `<name>_r<r>`.
    `generative`: the strong decoder first learns the task's unlabeled text as a language
    model (finetune mode); its ceiling is measured from the same starting point. The paper
    used it for its reward-modeling task (section 5.2.2), not the NLP tasks; here any
    binary task with a strong decoder may use it.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    loss: str | None = None  # defaults to `name`
    options: dict[str, float] = Field(default_factory=dict)
    options_by_model: dict[str, dict[str, float]] = Field(default_factory=dict)
    select: Literal["last", "weak_val", "oracle"] = "last"
    val_fraction: float = Field(default=0.2, gt=0, le=0.5)
    bootstrap: bool = False
    generative: bool = False
    weak_labels: WeakLabelSpec | None = None
    # strong-to-strong iteration: round 1 learns the weak labels; each later round a fresh
    # student learns the previous round's predictions on the student half (a row each)
    rounds: int = Field(default=1, ge=1, le=10)

    @property
    def loss_name(self) -> str:
        return self.loss or self.name

    @property
    def processes_labels(self) -> bool:
        return self.weak_labels is not None and self.weak_labels.changes_labels()

    def describe(self, model: str) -> str:
        """One line saying what ran when `model` was trained: recorded in each result row."""
        options = ",".join(f"{k}={v:g}" for k, v in sorted(self.options_for(model).items()))
        parts = [f"loss={self.loss_name}" + (f"({options})" if options else "")]
        if self.select != "last":
            parts.append(f"select={self.select}({self.val_fraction:g})")
        if self.bootstrap:
            parts.append("bootstrap")
        if self.generative:
            parts.append("generative")
        if self.processes_labels:
            assert self.weak_labels is not None
            settings = ",".join(
                f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in self.weak_labels.identity().items()
            )
            parts.append(f"weak_labels({settings})")
        if self.rounds > 1:
            parts.append(f"rounds={self.rounds}")
        return "; ".join(parts)

    def row_name(self, round_: int | None) -> str:
        """The `method` of a result row: round r of an iterated method is `<name>_r<r>`."""
        return self.name if self.rounds == 1 or round_ is None else f"{self.name}_r{round_}"

    def options_for(self, model: str) -> dict[str, float]:
        """The loss options that apply when `model` is the one trained."""
        return {**self.options, **self.options_by_model.get(model, {})}


class LocalModel(_Strict):
    """A model folder on disk (save_pretrained layout) added to the ladder."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: PathFromHere
    pretrain_tokens: float = Field(gt=0)
    lr: float | None = Field(default=None, gt=0)


class HubModel(_Strict):
    """A registered hub model pinned to a revision: a commit, tag or branch of its repo."""

    name: str = Field(pattern=r"^[A-Za-z0-9_./-]+$")
    revision: str = Field(min_length=1)


class HubDataset(_Strict):
    """A registered hub dataset pinned to a revision of its repo (for tasks read from the
    hub's parquet conversion, a commit of its `refs/convert/parquet` branch)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    revision: str = Field(min_length=1)


class LocalDataset(_Strict):
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


class LoraSpec(_Strict):
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


class TrainSpec(_Strict):
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


class GenerativeSpec(_Strict):
    """Language-model fine-tuning before weak-label training (methods with `generative`)."""

    epochs: int = Field(default=1, gt=0)
    lr: float | None = Field(default=None, gt=0)  # None: the model card's fine-tuning rate


class DataSpec(_Strict):
    n_train: int | None = Field(default=2000, gt=0)
    n_test: int | None = Field(default=1000, gt=0)
    test_fraction: float = Field(default=0.25, gt=0, lt=1)
    balance: bool = True
    # Inputs over max_length tokens: keep their last tokens (where QA tasks put the question
    # and answer), drop them (the reference code's rule), or refuse the study.
    too_long: TooLong = "keep_end"


class PromptSpec(_Strict):
    """How tasks are put to a prompted model; default: a format per dataset."""

    instruction: str = Field(min_length=1)
    answer_prefix: str = "Answer:"
    choices: tuple[str, str] = (" No", " Yes")  # continuations meaning label 0, label 1


class BaselineSpec(_Strict):
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


class ResourcesSpec(_Strict):
    """How jobs share a cluster's devices (results do not depend on it).

    A job that needs one GPU asks for the share of it that its estimated memory takes
    (w2s_ray.study.cost), so small models run several to a device. `gpu_memory_gb`: each
    GPU's memory in GiB; `jobs_per_gpu`: at most this many jobs share one (1: every job
    takes whole GPUs). CPU-only clusters are unaffected. `shard_rows`: an inference job
    over more rows than this (features, a fine-tuned labeler's labels, weak answers) is
    split into shard jobs of about this many rows that run on any free devices at once,
    then merged; the merged output is what one job computes.
    """

    gpu_memory_gb: float = Field(default=80.0, gt=0)
    jobs_per_gpu: int = Field(default=4, ge=1, le=8)
    shard_rows: int = Field(default=8192, ge=1)


class InferenceSpec(_Strict):
    backend: str = "auto"  # auto | vllm | transformers (see `w2s-ray list backends`)


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
        return Path(_absolute(uri.removeprefix("file:").removeprefix("//"))).as_uri()
    return uri if sep or ":" in uri.split("/", 1)[0] else Path(_absolute(uri)).as_uri()


class WandbSpec(_Strict):
    """A Weights & Biases project; `offline` keeps the runs on disk for `wandb sync`. The API
    key comes from `wandb login` or WANDB_API_KEY, never from the study file."""

    project: str = Field(min_length=1)
    entity: str | None = Field(default=None, min_length=1)
    mode: Literal["online", "offline"] = "online"


class TrackingSpec(_Strict):
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


class StudySpec(_Strict):
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


def _loc_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _UNION_BRANCHES or "[" in str(part):
            continue  # pydantic names union branches; a person wants the key path
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


_UNION_BRANCHES = {
    "str",
    "bool",
    "LocalModel",
    "HubModel",
    "LocalDataset",
    "HubDataset",
    "MethodSpec",
}


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    models: dict[str, tuple[type[BaseModel], ...]] = {
        "train": (TrainSpec,),
        "lora": (LoraSpec,),
        "data": (DataSpec,),
        "generative": (GenerativeSpec,),
        "resources": (ResourcesSpec,),
        "tracking": (TrackingSpec,),
        "wandb": (WandbSpec,),
        "methods": (MethodSpec,),
        "weak_labels": (WeakLabelSpec,),
        "models": (LocalModel, HubModel),
        "datasets": (LocalDataset, HubDataset),
    }
    named = [p for p in loc[:-1] if isinstance(p, str) and p in models]
    found = models[named[-1]] if named else (StudySpec,)  # the innermost: tracking.wandb
    return list(dict.fromkeys(f for model in found for f in model.model_fields))


def explain_validation_error(source: str, exc: ValidationError) -> str:
    """One line per problem: where (file, key), what was wrong, how to fix it."""
    lines = []
    seen: set[str] = set()
    for err in exc.errors():
        where = _loc_text(err["loc"])
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            line = f"{source}: unknown key '{where}'{suggest(key, _fields_at(err['loc']))}"
        elif err["type"] == "missing":
            line = f"{source}: missing required key '{where}' — add it"
        else:
            line = f"{source}: key '{where}': {err['msg']} (got {err.get('input')!r})"
        if where not in seen:  # union branches repeat one mistake several times
            seen.add(where)
            lines.append(line)
    return "\n".join(lines)


def parse_spec(data: Any, source: str = "<study>") -> StudySpec:
    if not isinstance(data, dict):
        raise UserError(f"{source}: a study file must be a YAML mapping (name:, datasets:, ...)")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise UserError(explain_validation_error(source, exc)) from None


class _DuplicateKeyError(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's SafeLoader keeps the last of two equal keys silently, so a second `methods:`
    would replace the first; this one refuses them, in every mapping at every depth."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` keys may be overridden by design
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _DuplicateKeyError(key, seen[key], line)
                    seen[key] = line
                except TypeError:
                    continue  # an unhashable key: the base constructor reports it
        return super().construct_mapping(node, deep)


def load_spec(path: str | Path) -> StudySpec:
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"cannot read study file '{path}': {exc.strerror or exc} — give the path of a "
            "study YAML file, e.g. studies/quickstart.yaml (`ls studies/` lists the examples)"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except _DuplicateKeyError as exc:
        raise UserError(
            f"{path}: key '{exc.key}' is given twice in one mapping (lines {exc.first} and "
            f"{exc.second}); YAML would keep only the last — merge them into one"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where} — fix the syntax there") from None
    return parse_spec(data, str(path))

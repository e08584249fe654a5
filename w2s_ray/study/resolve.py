"""A study file with every name resolved: model cards, weak/strong pairs, generative tasks,
revisions. Every error is raised here, before any compute, naming the key and the fix."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from w2s_ray.data import DataConfig
from w2s_ray.datasets import DATASETS, DEFAULT_MAX_LENGTH, max_length_for
from w2s_ray.errors import UserError
from w2s_ray.infer.backend import BACKEND_NAMES
from w2s_ray.infer.prompts import PromptFormat, format_for
from w2s_ray.models import ModelCard, find_model, local_card
from w2s_ray.registry import suggest
from w2s_ray.spec import HubDataset, HubModel, LocalDataset, LocalModel, MethodSpec, StudySpec
from w2s_ray.study.inputs import hub_dataset_revision, hub_model_card, warn_unresolved
from w2s_ray.study.tracking import check_packages
from w2s_ray.train.loop import TrainConfig
from w2s_ray.train.lora import LoraSettings
from w2s_ray.train.losses import build_loss

PROBE_DEFAULTS = {"epochs": 30, "lr": 1e-3, "batch_size": 64}
FINETUNE_EPOCHS = 2


@dataclass(frozen=True)
class Study:
    """A spec with every name resolved: the cards of its ladder and its weak/strong pairs."""

    spec: StudySpec
    cards: dict[str, ModelCard]
    pairs: list[tuple[str, str]]
    answer_tasks: frozenset[str] = frozenset()  # generative tasks (answers, exact match)
    # hub datasets: the revision read (a commit when known); absent: local, offline or unresolved
    dataset_revisions: dict[str, str] = field(default_factory=dict)

    def method(self, name: str | None) -> MethodSpec | None:
        """The spec of method `name`; None for jobs that train on true labels."""
        return next((m for m in self.spec.methods if m.name == name), None)

    def methods_for(self, dataset: str) -> list[MethodSpec]:
        """The methods a dataset's students train with: on a generative task, the plain
        language-model loss only (`xent` on answer tokens)."""
        if dataset not in self.answer_tasks:
            return list(self.spec.methods)
        return [m for m in self.spec.methods if _plain_answer_method(m)]

    @property
    def data_config(self) -> DataConfig:
        d = self.spec.data
        return DataConfig(d.n_train, d.n_test, d.test_fraction, d.balance)

    def max_length(self, dataset: str) -> int:
        """Tokens per input for `dataset`: the study's `train.max_length`, else the task's own
        default within the smallest context on the ladder (every model sees the same text)."""
        if self.spec.train.max_length is not None:
            return self.spec.train.max_length
        ref = self.dataset_ref(dataset)
        local = isinstance(ref, LocalDataset)
        default = DEFAULT_MAX_LENGTH if local else max_length_for(dataset)
        contexts = [c.context for c in self.cards.values() if c.context is not None]
        return min([default, *contexts])

    def length_models(self) -> list[str]:
        """The ladder's model identities: under `data.too_long: drop` every model's tokenizer
        decides which examples are too long, so they are part of what a job sees."""
        return sorted(json.dumps(c.identity(), sort_keys=True) for c in self.cards.values())

    def dataset_ref(self, name: str) -> str | LocalDataset | HubDataset:
        return next(d for d in self.spec.datasets if (d if isinstance(d, str) else d.name) == name)

    def prompt_format(self, dataset: str) -> PromptFormat:
        custom = self.spec.baselines.prompt
        if custom is None:
            return format_for(dataset)
        return PromptFormat(custom.instruction, custom.answer_prefix, custom.choices)

    def prompted_models(self) -> list[str]:
        """Strong models that baselines prompt: decoders (an encoder has no next token)."""
        return self.strong_decoders() if self.spec.baselines.enabled else []

    def strong_decoders(self) -> list[str]:
        """Strong models that are decoders: what can be prompted or fine-tuned as an LM."""
        strong = {s for _, s in self.pairs}
        return [m for m in self.cards if m in strong and self.cards[m].arch == "decoder"]

    def between(self, weak: str, strong: str) -> list[str]:
        """Ladder models with more effective compute than `weak` and less than `strong`."""
        low, high = self.cards[weak].effective_compute, self.cards[strong].effective_compute
        inside = [m for m, c in self.cards.items() if low < c.effective_compute < high]
        return sorted(inside, key=lambda m: self.cards[m].effective_compute)

    def members_below(self, method: MethodSpec, weak: str, strong: str) -> bool:
        """Whether every other model a method's weak-label ensemble averages in has less
        effective compute than the student (`strong`): else the pair is not weak-to-strong."""
        members = method.weak_labels.ensemble_models if method.weak_labels else []
        top = self.cards[strong].effective_compute
        return all(self.cards[m].effective_compute < top for m in members if m != weak)

    def ensemble_labelers(self, dataset: str) -> list[str]:
        """Ladder models that label `dataset`'s student half: every pair's weak model and
        every model one of its methods' weak-label ensembles averages in."""
        labelers = {w for w, _ in self.pairs}
        for method in self.methods_for(dataset):
            if method.weak_labels is not None:
                labelers.update(method.weak_labels.ensemble_models)
        return sorted(labelers)

    def train_config(self, model: str, seed: int, method: MethodSpec | None) -> TrainConfig:
        t, card = self.spec.train, self.cards[model]
        probe = self.spec.mode == "probe"
        return TrainConfig(
            epochs=t.epochs or (PROBE_DEFAULTS["epochs"] if probe else FINETUNE_EPOCHS),
            lr=t.lr or (PROBE_DEFAULTS["lr"] if probe else card.lr),
            batch_size=t.batch_size or (PROBE_DEFAULTS["batch_size"] if probe else card.batch_size),
            seed=seed,
            loss=method.loss_name if method else "xent",
            loss_options=method.options_for(model) if method else {},
            weight_decay=t.weight_decay,
            dropout=t.dropout,
            warmup_frac=t.warmup_frac,
            grad_clip=t.grad_clip,
            lora=self.lora,
        )

    @property
    def lora(self) -> LoraSettings | None:
        """The study's LoRA settings for its classifier fine-tunes; None: full fine-tuning."""
        spec = self.spec.train.lora
        if spec is None:
            return None
        targets = tuple(spec.target_modules) if spec.target_modules is not None else None
        return LoraSettings(spec.rank, spec.alpha, spec.dropout, targets)


def resolve(spec: StudySpec) -> Study:
    """Check every name and the ladder order; errors name the key and the fix."""
    cards: dict[str, ModelCard] = {}
    for i, entry in enumerate(spec.models):
        with _at(f"models[{i}]"):
            if isinstance(entry, LocalModel):
                lr = entry.lr or 5e-5
                cards[entry.name] = local_card(entry.name, entry.path, entry.pretrain_tokens, lr)
            else:
                name = entry if isinstance(entry, str) else entry.name
                pinned = entry.revision if isinstance(entry, HubModel) else None
                cards[name] = hub_model_card(find_model(name), pinned)
    revisions: dict[str, str | None] = {}
    for i, dataset in enumerate(spec.datasets):
        if not isinstance(dataset, LocalDataset):
            with _at(f"datasets[{i}]"):
                name = dataset if isinstance(dataset, str) else dataset.name
                pinned = dataset.revision if isinstance(dataset, HubDataset) else None
                revision = hub_dataset_revision(name, pinned)
                if DATASETS.get(name).hf_path is not None:
                    revisions[name] = revision
        elif not Path(dataset.path).expanduser().is_file():
            raise UserError(
                f"key 'datasets[{i}].path': dataset file '{dataset.path}' does not exist — "
                "check the `path` in the study (relative paths start where you run w2s-ray)"
            )
    for i, method in enumerate(spec.methods):
        with _at(f"methods[{i}]"):
            build_loss(method.loss_name, method.options)

    generative = [i for i, m in enumerate(spec.methods) if m.generative]
    if generative and spec.mode != "finetune":
        raise UserError(
            f"key 'methods[{generative[0]}].generative': generative fine-tuning changes the "
            "model's weights, which probe mode keeps frozen — set `mode: finetune`"
        )
    with _at("inference.backend"):
        BACKEND_NAMES.get(spec.inference.backend)
    check_packages(spec.tracking)  # a tracker's missing package, before Ray starts
    warn_unresolved(cards, revisions)
    known = {name: rev for name, rev in revisions.items() if rev is not None}
    study = Study(spec, cards, _pairs(spec, cards), _answer_tasks(spec, cards), known)
    for i, method in enumerate(spec.methods):
        _check_options_by_model(study, method, f"methods[{i}].options_by_model")
        _check_weak_labels(study, method, f"methods[{i}]")
    if generative and not study.strong_decoders():
        raise UserError(
            f"key 'methods[{generative[0]}].generative': no strong model of the study is a "
            "decoder (a language model to fine-tune) — add one, e.g. smollm2-135m or gpt2"
        )
    _check_lora(study)
    too_big = _several_devices(cards, study.strong_decoders())
    if generative and too_big:
        raise UserError(
            f"key 'methods[{generative[0]}].generative': language-model fine-tuning runs on "
            f"one device, and {', '.join(too_big)} need(s) several — drop the generative "
            "method or those models"
        )
    return study


def _check_weak_labels(study: Study, method: MethodSpec, where: str) -> None:
    """Ensemble members are ladder models; processed labels are the weak model's own."""
    spec = method.weak_labels
    if spec is None:
        return
    for model in spec.ensemble_models:
        if model not in study.cards:
            raise UserError(
                f"key '{where}.weak_labels.ensemble_models': '{model}' is not in `models`"
                f"{suggest(model, list(study.cards))} — name a model of the ladder"
            )
    if method.bootstrap and spec.changes_labels():
        raise UserError(
            f"key '{where}.weak_labels': bootstrapped students learn the last rung's labels, "
            "not the weak model's — use `weak_labels` or `bootstrap: true` in one method, not both"
        )
    pairs = [(w, s) for w, s in study.pairs if study.members_below(method, w, s)]
    if not pairs:
        raise UserError(
            f"key '{where}.weak_labels.ensemble_models': no pair's strong model is above every "
            "member, so no student would train — list weaker models"
        )


def _check_lora(study: Study) -> None:
    """LoRA adapts the backbone of a classifier fine-tune, replicated on each worker (DDP)."""
    spec = study.spec
    if spec.train.lora is None:
        return
    if spec.mode != "finetune":
        raise UserError(
            "key 'train.lora': probe mode trains a head on frozen features, with no backbone "
            "to adapt — set `mode: finetune` or drop `train.lora`"
        )
    if spec.train.strategy == "fsdp":
        raise UserError(
            "key 'train.strategy': LoRA trains with DDP (a LoRA fine-tune of a 7B model fits "
            "one device) — set `strategy: ddp` or drop `train.lora`"
        )
    if study.answer_tasks:
        raise UserError(
            f"key 'train.lora': LoRA adapts classifier fine-tunes, and "
            f"{', '.join(sorted(study.answer_tasks))} train(s) whole language models to write "
            "answers — drop `train.lora` or those datasets"
        )


def _check_options_by_model(study: Study, method: MethodSpec, where: str) -> None:
    """Each model named must be one this method trains, and its merged options valid."""
    trained = {strong for _, strong in study.pairs}
    if method.bootstrap:
        trained |= {m for weak, strong in study.pairs for m in study.between(weak, strong)}
    for model in method.options_by_model:
        if model not in study.cards:
            raise UserError(
                f"key '{where}': '{model}' is not in `models`{suggest(model, list(study.cards))}"
                " — name a model of the ladder"
            )
        if model not in trained:
            what = "strong models and bootstrap rungs" if method.bootstrap else "strong models"
            raise UserError(
                f"key '{where}': method '{method.name}' never trains '{model}' (it trains "
                f"{what} only) — name one of: {', '.join(sorted(trained))}"
            )
        with _at(f"{where}.{model}"):
            build_loss(method.loss_name, method.options_for(model))


def _several_devices(cards: dict[str, ModelCard], names: list[str]) -> list[str]:
    """Models whose card asks for more than one device: what the single-process language-
    model trainers (generative fine-tuning, answer tasks) cannot take."""
    return [name for name in names if cards[name].resources.gpus > 1]


def _plain_answer_method(method: MethodSpec) -> bool:
    return (
        method.loss_name == "xent"
        and not (method.options or method.options_by_model)
        and method.select == "last"
        and not (method.bootstrap or method.generative or method.weak_labels)
        and method.rounds == 1
    )


def _answer_tasks(spec: StudySpec, cards: dict[str, ModelCard]) -> frozenset[str]:
    """Generative datasets of the study, checked against what they need before any compute."""
    from w2s_ray.datasets import is_answer_file

    found = set()
    for i, dataset in enumerate(spec.datasets):
        name = dataset if isinstance(dataset, str) else dataset.name
        if isinstance(dataset, LocalDataset):
            generative = is_answer_file(Path(dataset.path).expanduser())
        else:
            generative = DATASETS.get(name).generative
        if not generative:
            continue
        where = (
            f"key 'datasets[{i}]': '{name}' is a generative task (answers scored by exact match)"
        )
        if spec.mode != "finetune":
            raise UserError(f"{where}, which trains whole models — set `mode: finetune`")
        encoders = [m for m, card in cards.items() if card.arch != "decoder"]
        if encoders:
            raise UserError(f"{where}; only decoders write answers — drop {', '.join(encoders)}")
        too_big = _several_devices(cards, list(cards))
        if too_big:
            raise UserError(
                f"{where}; its models train on one device, and {', '.join(too_big)} need(s) "
                "several — drop them from the ladder"
            )
        if not any(_plain_answer_method(m) for m in spec.methods):
            raise UserError(
                f"{where}; its students learn answers with the language-model loss — add the "
                "method `xent` (other losses and options apply to binary tasks only)"
            )
        found.add(name)
    return frozenset(found)


@contextlib.contextmanager
def _at(where: str) -> Iterator[None]:
    """Prefix a registry error with the study-file key it came from."""
    try:
        yield
    except UserError as exc:
        raise UserError(f"key '{where}': {exc}") from None


def _pairs(spec: StudySpec, cards: dict[str, ModelCard]) -> list[tuple[str, str]]:
    compute = {name: card.effective_compute for name, card in cards.items()}
    if spec.pairs is None:
        ladder = sorted(cards, key=lambda n: compute[n])
        pairs = [
            (w, s) for i, w in enumerate(ladder) for s in ladder[i + 1 :] if compute[s] > compute[w]
        ]
        if not pairs:
            raise UserError(
                "key 'models': every model has the same effective compute, so none is stronger "
                "than another — add a bigger model, or give local models their pretrain_tokens"
            )
        return pairs
    for i, (weak, strong) in enumerate(spec.pairs):
        for name in (weak, strong):
            if name not in cards:
                raise UserError(
                    f"key 'pairs[{i}]': '{name}' is not in `models`"
                    f"{suggest(name, list(cards))} — add it to the ladder"
                )
        if compute[strong] <= compute[weak]:
            raise UserError(
                f"key 'pairs[{i}]': strong model '{strong}' ({compute[strong]:.2e} FLOPs) is not "
                f"bigger than weak model '{weak}' ({compute[weak]:.2e}) — swap them"
            )
    return [tuple(p) for p in spec.pairs]  # type: ignore[misc]


def dataset_identity(study: Study, name: str) -> dict[str, Any]:
    """A dataset's name and content: a local file's digest, a hub dataset's revision."""
    ref = study.dataset_ref(name)
    if not isinstance(ref, LocalDataset):
        revision = study.dataset_revisions.get(name)
        return {"dataset": name} if revision is None else {"dataset": name, "revision": revision}
    from w2s_ray.identity import file_digest

    path = Path(ref.path).expanduser()
    return {"dataset": name, "file_sha256": file_digest(path) if path.is_file() else "missing"}

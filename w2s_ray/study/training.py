"""What the classifier stages share: a job's inputs and model, training on (soft) targets
with epoch selection and checkpoints, and scoring. No Ray here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from w2s_ray.datasets import Example
from w2s_ray.infer.backend import InferenceBackend, backend_for, get_backend
from w2s_ray.infer.hf import pick_device
from w2s_ray.infer.vllm_support import Task
from w2s_ray.spec import MethodSpec
from w2s_ray.study import artifacts, data_prep
from w2s_ray.study.epochs import EpochLog
from w2s_ray.study.faults import FaultReporter
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.selection import BestEpoch, held_out
from w2s_ray.study.store import StudyStore
from w2s_ray.train.checkpointing import checkpoint_blocks
from w2s_ray.train.inputs import FeatureInputs, Inputs, TokenInputs
from w2s_ray.train.loop import fit, predict_probs
from w2s_ray.train.lora import adapter_metadata, add_adapters, load_classifier
from w2s_ray.train.metrics import accuracy, auroc
from w2s_ray.train.model import FinetuneClassifier, ProbeClassifier, load_backbone
from w2s_ray.train.state import StateAccess, WholeState, unwrapped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parallel:
    """This process's place in a multi-worker fine-tune; rank 0 of 1 when it trains alone.

    `wrap` turns the model into its distributed form (DDP/FSDP, moved to this worker's
    device) and `state` reads its weights back; the caller sets up the process group.
    Only rank 0 writes files.
    """

    rank: int = 0
    world: int = 1
    wrap: Callable[[nn.Module], nn.Module] | None = None
    state: StateAccess = field(default_factory=WholeState)


ALONE = Parallel()
# What computed labels that came from a head in torch rather than an inference backend
# (probe heads on cached features, bootstrap fold models); recorded as a backend's name is.
TORCH_HEAD = "torch"


# An ensemble member trains on the same half as its seed's model with this seed offset
# (its data order, dropout and any random init differ; its examples do not).
MEMBER_SEED_STRIDE = 1_000_003


def member_seed(seed: int, member: int) -> int:
    return seed + MEMBER_SEED_STRIDE * member


def training_seed(job: Job) -> int:
    """The seed `job` trains with: its study seed, offset for an ensemble member."""
    return member_seed(job.seed or 0, int(job.key.get("member", 0)))


def backend(study: Study, model_path: str, task: Task) -> InferenceBackend:
    """The engine for `model_path` and `task` under the study's `inference.backend`; jobs
    record its `name` beside what it made."""
    trust = study.spec.trust_remote_code
    name = backend_for(study.spec.inference.backend, model_path, task, trust_remote_code=trust)
    return get_backend(name, trust_remote_code=trust)


def inputs_for(study: Study, job: Job, examples: list[Example]) -> Inputs:
    if study.spec.mode == "probe":
        assert job.features is not None, f"{job.title} has no features job"
        return FeatureInputs(artifacts.required_features(job.features, [ex.id for ex in examples]))
    tokenizer = data_prep.tokenizer_for(study, model_path(study, job))
    ids = data_prep.encode(study, job.dataset, tokenizer, [ex.text for ex in examples])
    return TokenInputs(ids, tokenizer.pad_token_id)


def model_path(study: Study, job: Job) -> str:
    """Where `job`'s model loads from: its card, or the generatively fine-tuned copy."""
    if job.backbone is not None:
        return str(artifacts.finished_backbone(job.backbone))
    return study.cards[job.model].resolve_path()


def classifier_for(study: Study, job: Job, inputs: Inputs) -> nn.Module:
    """The model to train, on this process's device (a GPU when there is one)."""
    if isinstance(inputs, FeatureInputs):
        model: nn.Module = ProbeClassifier(inputs.features.shape[1])
    else:
        trust = study.spec.trust_remote_code
        backbone = load_backbone(model_path(study, job), trust_remote_code=trust)[0]
        if study.spec.resources.activation_checkpointing:  # memory for compute, same numbers
            checkpoint_blocks(backbone)
        if study.lora is not None:  # frozen, with adapters; the head trains either way
            backbone = add_adapters(backbone, study.lora)
        model = FinetuneClassifier(backbone, study.cards[job.model].pooling)
    return model.to(pick_device())


def selection_for(
    job: Job, method: MethodSpec | None, train: list[Example], targets: torch.Tensor
) -> tuple[list[int], list[int], torch.Tensor] | None:
    """(fit positions, validation positions, validation labels) when the method chooses its
    epoch on held-out examples: weak labels (`weak_val`) or true ones (`oracle`)."""
    if method is None or method.select == "last":
        return None
    fit_pos, val_pos = held_out(
        [ex.id for ex in train], [ex.group for ex in train], method.val_fraction, job.seed or 0
    )
    if method.select == "oracle":
        labels = torch.tensor([train[i].label for i in val_pos])
    else:
        labels = (targets[val_pos, 1] > 0.5).long()
    return fit_pos, val_pos, labels


def saved_weights(store: StudyStore, rel: str) -> dict[str, torch.Tensor] | None:
    """Weights an earlier attempt finished training (then killed before its result)."""
    if not store.exists(rel):
        return None
    try:
        return artifacts.load_weights(store, rel)
    except Exception as exc:
        log.warning("weights %s are unreadable (%s); training again", store.uri(rel), exc)
        return None


def train_and_evaluate(
    job: Job,
    study: Study,
    store: StudyStore,
    train: list[Example],
    targets: torch.Tensor,
    evaluate: list[Example],
    parallel: Parallel,
    tag: str = "",
) -> tuple[torch.Tensor, dict[str, Any]] | None:
    """Train on `targets`, save the weights, return the probabilities on `evaluate` and what
    was chosen (rank 0 only). `tag` names this model's files when a job trains several."""
    torch.manual_seed(training_seed(job))
    method = study.method(job.method)
    selection = selection_for(job, method, train, targets)
    info: dict[str, Any] = {"selection": method.select if method else "last"}
    fit_examples, fit_targets = train, targets
    if selection is not None:
        fit_pos = selection[0]
        fit_examples, fit_targets = [train[i] for i in fit_pos], targets[fit_pos]
    tokenizer = data_prep.tokenizer_for(study, model_path(study, job))
    keep = data_prep.conflict_free_positions(
        study,
        job.dataset,
        tokenizer,
        [ex.text for ex in fit_examples],
        (fit_targets[:, 1] > 0.5).long().tolist(),
    )
    info["n_dropped_conflicting"] = len(fit_examples) - len(keep)
    if len(keep) < len(fit_examples):
        fit_examples, fit_targets = [fit_examples[i] for i in keep], fit_targets[keep]
    seen = {ex.id: ex.text for ex in train + evaluate}  # a student also scores its train half
    info["n_cut"] = data_prep.count_cut(study, job.dataset, tokenizer, list(seen.values()))
    weights_file = store.job_file(job.job_id, f"model{tag}.safetensors")
    # every worker of a multi-worker fine-tune must train, or the others wait for ever
    weights = saved_weights(store, weights_file) if parallel.world == 1 else None
    model: nn.Module | None = None
    if weights is None:
        train_inputs = inputs_for(study, job, fit_examples)
        model = classifier_for(study, job, train_inputs)
        if parallel.wrap is not None:
            model = parallel.wrap(model)
        cfg = study.train_config(job.model, training_seed(job), method)
        checkpoint = store.job_file(job.job_id, f"checkpoint{tag}.pt")
        checkpointer = artifacts.FileCheckpointer(store, checkpoint)
        best = None
        if selection is not None:
            val_inputs = inputs_for(study, job, [train[i] for i in selection[1]])
            best = BestEpoch(
                store,
                job.job_id,
                tag,
                val_inputs,
                selection[2],
                rank=parallel.rank,
                access=parallel.state,
            )
            if parallel.rank == 0 and not store.exists(checkpoint):
                best.reset()
        reporter = FaultReporter(store, job.stage)
        fit(
            model,
            train_inputs,
            fit_targets,
            cfg,
            checkpointer,
            EpochLog(store, job.job_id, tag, reporter) if parallel.rank == 0 else reporter,
            shard=(parallel.rank, parallel.world),
            state_access=parallel.state,
            on_epoch_end=best,
        )
        if parallel.rank != 0 and not parallel.state.collective:
            return None
        weights = parallel.state.model_state(model)  # under FSDP every rank joins this gather
        if parallel.rank != 0:
            return None
        if best is not None:
            weights = best.chosen()[2]
        artifacts.save_weights(store, weights_file, weights, adapter_metadata(model))
        checkpointer.clear()
        if checkpointer.resumed_from_step is not None:
            log.info("%s resumed from step %d", job.title, checkpointer.resumed_from_step)
            store.append_text(
                store.job_file(job.job_id, "resumes.txt"),
                f"resumed from step {checkpointer.resumed_from_step}\n",
            )
    if parallel.rank != 0:
        return None
    if selection is not None:
        record = store.read_json(store.job_file(job.job_id, f"best{tag}.json")) or {}
        info.update(selected_epoch=record.get("epoch"), selection_accuracy=record.get("score"))
        store.delete(store.job_file(job.job_id, f"best{tag}.safetensors"))
    eval_inputs = inputs_for(study, job, evaluate)
    if model is None or selection is not None or parallel.state.collective:
        # a whole, single-process copy with the chosen weights (a sharded model's forward
        # would need every rank)
        model = classifier_for(study, job, eval_inputs)
        load_classifier(model, weights)
    return predict_probs(unwrapped(model), eval_inputs), info


def probs_of(p1: dict[str, float], examples: list[Example]) -> torch.Tensor:
    """[N, 2] class probabilities of `examples` from stored P(label 1) by example id."""
    ones = torch.tensor([p1[ex.id] for ex in examples], dtype=torch.float32)
    return torch.stack([1 - ones, ones], dim=1)


def metrics_of(probs: torch.Tensor, examples: list[Example]) -> dict[str, float]:
    labels = torch.tensor([ex.label for ex in examples])
    return {
        "test_accuracy": accuracy(probs, labels),
        "test_auroc": auroc(probs[:, 1], labels),
        # squared error of P(label 1): the loss the gain–misfit relation is stated in
        "test_brier": float(((probs[:, 1].float() - labels.float()) ** 2).mean()),
    }


def n_cut(study: Study, job: Job, examples: list[Example]) -> int:
    """How many of `examples` the job's model sees cut to max_length (their end kept)."""
    tokenizer = data_prep.tokenizer_for(study, model_path(study, job))
    return data_prep.count_cut(study, job.dataset, tokenizer, [ex.text for ex in examples])

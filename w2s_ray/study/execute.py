"""Run one planned job, whatever its stage, and write its result.json. No Ray here.

Each stage is one readable function: load inputs, train or infer, evaluate, save.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from w2s_ray.datasets import Example
from w2s_ray.infer.backend import ClassifierRef, InferenceBackend, get_backend
from w2s_ray.infer.hf import pick_device
from w2s_ray.infer.prompts import draw_demonstrations, encode_for_scoring
from w2s_ray.spec import MethodSpec
from w2s_ray.study import answers, artifacts, data_prep
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.faults import FaultReporter
from w2s_ray.study.folds import assign_folds
from w2s_ray.study.inputs import job_record
from w2s_ray.study.lm_jobs import cached_lm_finetune
from w2s_ray.study.plan import Job, Study, lm_train_settings
from w2s_ray.study.selection import BestEpoch, held_out
from w2s_ray.study.store import StudyStore
from w2s_ray.train.inputs import FeatureInputs, Inputs, TokenInputs
from w2s_ray.train.loop import fit, predict_probs
from w2s_ray.train.metrics import accuracy, agreement, auroc
from w2s_ray.train.model import (
    FinetuneClassifier,
    ProbeClassifier,
    load_backbone,
)
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


def run_job(
    job: Job, study: Study, store: StudyStore, parallel: Parallel = ALONE
) -> dict[str, Any] | None:
    """Run `job` and record its result atomically; returns the result (None off rank 0)."""
    started = time.monotonic()
    trainers = {
        "ground_truth": run_ground_truth,
        "student": run_student,
        "bootstrap": run_bootstrap_step,
    }
    if job.stage in trainers:
        result = trainers[job.stage](job, study, store, parallel)
    else:
        stage_runners = {
            "features": run_features,
            "generative": run_generative,
            "label": run_label,
            "baseline": run_baseline,
        }
        result = stage_runners[job.stage](job, study, store)
    if result is None:
        return None
    card = study.cards[job.model]
    weak_card = study.cards.get(job.weak_model) if job.weak_model else None
    result.update(
        stage=job.stage,
        dataset=job.dataset,
        seed=job.seed,
        model=job.model,
        weak_model=job.weak_model,
        method=job.method,
        mode=study.spec.mode,
        effective_compute=card.effective_compute,
        weak_effective_compute=weak_card.effective_compute if weak_card else None,
        pretraining="generative" if job.backbone else None,
        max_length=study.max_length(job.dataset),
        wall_seconds=round(time.monotonic() - started, 3),
        title=job.title,
        inputs=job_record(study, job),  # the revisions and digests its numbers came from
    )
    store.write_result(job.job_id, result)
    return result


def run_features(job: Job, study: Study, store: StudyStore) -> dict[str, Any]:
    """Frozen pooled features of every pool and test example, cached across studies."""
    pool, test = data_prep.pool_and_test(study, job.dataset)
    examples = pool + test
    if artifacts.load_features(job.job_id) is None:
        card = study.cards[job.model]
        features = _backend(study).features(
            card.resolve_path(),
            [ex.text for ex in examples],
            pooling=card.pooling,
            max_length=study.max_length(job.dataset),
        )
        artifacts.save_features(job.job_id, [ex.id for ex in examples], features)
    return {"n_examples": len(examples), "n_cut": _n_cut(study, job, examples)}


def run_generative(job: Job, study: Study, store: StudyStore) -> dict[str, Any]:
    """Language-model fine-tuning of a strong decoder on the pool's texts (never the test
    set, never a label); the result is a model folder in the cache, shared by the ceiling
    and every student that starts from it."""
    pool, _ = data_prep.pool_and_test(study, job.dataset)
    card = study.cards[job.model]

    def texts() -> tuple[list[list[int]], None]:
        tokenizer = data_prep.tokenizer_for(study, card.resolve_path())
        return data_prep.encode(study, job.dataset, tokenizer, [ex.text for ex in pool]), None

    gen, settings = study.spec.generative, lm_train_settings(study, job.model)
    _, record = cached_lm_finetune(
        job,
        study,
        store,
        texts,
        epochs=gen.epochs,
        lr=gen.lr or card.lr,
        seed=0,
        **settings,
    )
    return {**record, "n_train": len(pool)}


def _backend(study: Study) -> InferenceBackend:
    return get_backend(study.spec.inference.backend, trust_remote_code=study.spec.trust_remote_code)


def _inputs(study: Study, job: Job, examples: list[Example]) -> Inputs:
    if study.spec.mode == "probe":
        feature_job = next(d for d in job.deps if d.startswith("features-"))
        loaded = artifacts.load_features(feature_job)
        if loaded is None:
            raise RuntimeError(f"features {feature_job} are missing; rerun the study to rebuild")
        rows, features = loaded
        return FeatureInputs(features[[rows[ex.id] for ex in examples]])
    tokenizer = data_prep.tokenizer_for(study, model_path(study, job))
    ids = data_prep.encode(study, job.dataset, tokenizer, [ex.text for ex in examples])
    return TokenInputs(ids, tokenizer.pad_token_id)


def model_path(study: Study, job: Job) -> str:
    """Where `job`'s model loads from: its card, or the generatively fine-tuned copy."""
    if job.backbone is not None:
        return str(artifacts.finished_backbone(job.backbone))
    return study.cards[job.model].resolve_path()


def _classifier(study: Study, job: Job, inputs: Inputs) -> nn.Module:
    """The model to train, on this process's device (a GPU when there is one)."""
    if isinstance(inputs, FeatureInputs):
        model: nn.Module = ProbeClassifier(inputs.features.shape[1])
    else:
        trust = study.spec.trust_remote_code
        backbone = load_backbone(model_path(study, job), trust_remote_code=trust)[0]
        model = FinetuneClassifier(backbone, study.cards[job.model].pooling)
    return model.to(pick_device())


def _selection(
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


def _saved_weights(store: StudyStore, rel: str) -> dict[str, torch.Tensor] | None:
    """Weights an earlier attempt finished training (then killed before its result)."""
    if not store.exists(rel):
        return None
    try:
        return artifacts.load_weights(store, rel)
    except Exception as exc:
        log.warning("weights %s are unreadable (%s); training again", store.uri(rel), exc)
        return None


def _train_and_evaluate(
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
    torch.manual_seed(job.seed or 0)
    method = study.method(job.method)
    selection = _selection(job, method, train, targets)
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
    info["n_cut"] = data_prep.count_cut(
        study, job.dataset, tokenizer, [ex.text for ex in train + evaluate]
    )
    weights_file = store.job_file(job.job_id, f"model{tag}.safetensors")
    # every worker of a multi-worker fine-tune must train, or the others wait for ever
    weights = _saved_weights(store, weights_file) if parallel.world == 1 else None
    model: nn.Module | None = None
    if weights is None:
        train_inputs = _inputs(study, job, fit_examples)
        model = _classifier(study, job, train_inputs)
        if parallel.wrap is not None:
            model = parallel.wrap(model)
        cfg = study.train_config(job.model, job.seed or 0, method)
        checkpoint = store.job_file(job.job_id, f"checkpoint{tag}.pt")
        checkpointer = artifacts.FileCheckpointer(store, checkpoint)
        best = None
        if selection is not None:
            val_inputs = _inputs(study, job, [train[i] for i in selection[1]])
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
        fit(
            model,
            train_inputs,
            fit_targets,
            cfg,
            checkpointer,
            FaultReporter(store, job.stage),
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
        artifacts.save_weights(store, weights_file, weights)
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
    eval_inputs = _inputs(study, job, evaluate)
    if model is None or selection is not None or parallel.state.collective:
        # a whole, single-process copy with the chosen weights (a sharded model's forward
        # would need every rank)
        model = _classifier(study, job, eval_inputs)
        model.load_state_dict(weights)
    return predict_probs(unwrapped(model), eval_inputs), info


def _probs(p1: dict[str, float], examples: list[Example]) -> torch.Tensor:
    """[N, 2] class probabilities of `examples` from stored P(label 1) by example id."""
    ones = torch.tensor([p1[ex.id] for ex in examples], dtype=torch.float32)
    return torch.stack([1 - ones, ones], dim=1)


def _metrics(probs: torch.Tensor, examples: list[Example]) -> dict[str, float]:
    labels = torch.tensor([ex.label for ex in examples])
    return {"test_accuracy": accuracy(probs, labels), "test_auroc": auroc(probs[:, 1], labels)}


def run_ground_truth(
    job: Job, study: Study, store: StudyStore, parallel: Parallel = ALONE
) -> dict[str, Any] | None:
    """Fine-tune on the weak-train half's true labels: a weak supervisor and a ceiling."""
    splits = splits_for(study, job.dataset, job.seed or 0)
    if job.dataset in study.answer_tasks:
        return answers.run_ground_truth(job, study, store, splits) if parallel.rank == 0 else None
    labels = torch.tensor([ex.label for ex in splits.weak_train])
    targets = nn.functional.one_hot(labels, 2).float()
    trained = _train_and_evaluate(
        job, study, store, splits.weak_train, targets, splits.test, parallel
    )
    if trained is None:
        return None
    probs, info = trained
    # the ceiling's own test predictions: prompting baselines on a subset of the test set
    # compare with the ceiling on exactly their examples
    artifacts.save_test_predictions(store, job.job_id, [ex.id for ex in splits.test], probs)
    counts = {k: info[k] for k in ("n_cut", "n_dropped_conflicting")}
    return {**_metrics(probs, splits.test), **counts, "n_train": len(splits.weak_train)}


def run_label(job: Job, study: Study, store: StudyStore) -> dict[str, Any]:
    """The weak supervisor's soft labels on the student half and the test set."""
    splits = splits_for(study, job.dataset, job.seed or 0)
    if job.dataset in study.answer_tasks:
        return answers.run_label(job, study, store, splits)
    examples = splits.student_train + splits.test
    supervisor = job.deps[0]
    soft = artifacts.load_labels(job.job_id)
    if soft is None:
        weights_file = store.job_file(supervisor, "model.safetensors")
        if study.spec.mode == "finetune":  # a fine-tuned backbone: an inference backend's job
            card = study.cards[job.model]
            weights = store.read_bytes(weights_file)
            if weights is None:
                raise RuntimeError(f"weights {store.uri(weights_file)} are missing; rerun")
            classifier = ClassifierRef(card.resolve_path(), card.pooling, weights)
            texts = [ex.text for ex in examples]
            max_length = study.max_length(job.dataset)
            probs = _backend(study).label(classifier, texts, max_length=max_length)
        else:  # a linear head on cached features: nothing to gain from an engine
            inputs = _inputs(study, job, examples)
            model = _classifier(study, job, inputs)
            model.load_state_dict(artifacts.load_weights(store, weights_file))
            probs = predict_probs(model, inputs)
        artifacts.save_labels(job.job_id, [ex.id for ex in examples], probs)
        soft = artifacts.load_labels(job.job_id)  # as stored: what students will train on
    assert soft is not None
    return {
        **_metrics(_probs(soft, splits.test), splits.test),
        "n_train": len(splits.student_train),
        "n_cut": _n_cut(study, job, examples),
    }


def _n_cut(study: Study, job: Job, examples: list[Example]) -> int:
    """How many of `examples` the job's model sees cut to max_length (their end kept)."""
    tokenizer = data_prep.tokenizer_for(study, model_path(study, job))
    return data_prep.count_cut(study, job.dataset, tokenizer, [ex.text for ex in examples])


def _labels_dep(job: Job) -> str:
    """The job whose labels this one trains on: a weak supervisor's, or a bootstrap step's."""
    return next(d for d in job.deps if d.startswith(("label-", "bootstrap-")))


def run_bootstrap_step(
    job: Job, study: Study, store: StudyStore, parallel: Parallel = ALONE
) -> dict[str, Any] | None:
    """One rung of a bootstrapping chain: learn the previous rung's labels, then label the
    student half for the next rung.

    A model would mostly repeat the labels it was trained on if it labeled its own training
    examples, so the student half is cross-fitted: a model per fold (the job's `folds`,
    groups kept whole) trains on the other folds and labels its own, and the test set gets
    the folds' mean probability. `n_train` is what each fold model learned from (the
    smallest of them).
    """
    splits = splits_for(study, job.dataset, job.seed or 0)
    pool = splits.student_train
    previous = artifacts.load_labels(_labels_dep(job))
    if previous is None:
        raise RuntimeError(f"labels {_labels_dep(job)} are missing; rerun the study to rebuild")
    folds = int(job.key["folds"])
    fold_of = assign_folds(pool, folds, job.seed or 0)
    fold_train = [[ex for ex in pool if fold_of[ex.id] != fold] for fold in range(folds)]
    labels = artifacts.load_labels(job.job_id)
    if labels is None:
        held_out_probs: dict[str, torch.Tensor] = {}
        test_probs = []
        for fold, train in enumerate(fold_train):
            own = [ex for ex in pool if fold_of[ex.id] == fold]
            trained = _train_and_evaluate(
                job,
                study,
                store,
                train,
                _probs(previous, train),
                own + splits.test,
                parallel,
                f"-fold{fold}",
            )
            if trained is None:
                continue
            probs = trained[0]
            held_out_probs.update(zip([ex.id for ex in own], probs[: len(own)], strict=True))
            test_probs.append(probs[len(own) :])
        if parallel.rank != 0:
            return None
        ordered = torch.stack([held_out_probs[ex.id] for ex in pool])
        probs = torch.cat([ordered, torch.stack(test_probs).mean(0)])
        artifacts.save_labels(job.job_id, [ex.id for ex in pool + splits.test], probs)
        labels = artifacts.load_labels(job.job_id)  # as stored: what the next rung trains on
    if parallel.rank != 0 or labels is None:
        return None
    probs = _probs(labels, splits.test)
    return {
        **_metrics(probs, splits.test),
        "n_train": min(len(train) for train in fold_train),
        "n_folds": folds,
        "n_pool": len(pool),
        "agreement_with_weak": agreement(probs, _probs(previous, splits.test)),
        "chain": ">".join(job.chain),
    }


def run_student(
    job: Job, study: Study, store: StudyStore, parallel: Parallel = ALONE
) -> dict[str, Any] | None:
    """Train the strong model on the weak model's soft labels; evaluate on ground truth."""
    splits = splits_for(study, job.dataset, job.seed or 0)
    if job.dataset in study.answer_tasks:
        return answers.run_student(job, study, store, splits) if parallel.rank == 0 else None
    label_job = _labels_dep(job)
    soft = artifacts.load_labels(label_job)
    if soft is None:
        raise RuntimeError(f"weak labels {label_job} are missing; rerun the study to rebuild")
    trained = _train_and_evaluate(
        job,
        study,
        store,
        splits.student_train,
        _probs(soft, splits.student_train),
        splits.test,
        parallel,
    )
    if trained is None:
        return None
    probs, info = trained
    weak_probs = _probs(soft, splits.test)
    return {
        **_metrics(probs, splits.test),
        **info,
        "n_train": len(splits.student_train),
        "agreement_with_weak": agreement(probs, weak_probs),
        "chain": ">".join(job.chain) if job.chain else None,
    }


def run_baseline(job: Job, study: Study, store: StudyStore) -> dict[str, Any]:
    """Prompt the strong model: zero-shot, or k-shot with ground-truth or weak demonstrations.

    P(label 1) is the softmax over the two answers' log-probabilities.
    """
    base = study.spec.baselines
    splits = splits_for(study, job.dataset, job.seed or 0)
    test = splits.test[: base.n_test] if base.n_test else splits.test
    ids = [ex.id for ex in test]
    frame = artifacts.load_scores(job.job_id, ids)
    if frame is None:
        _score_prompts(job, study, splits.student_train, test)
        frame = artifacts.load_scores(job.job_id, ids)  # what later runs will read
    if frame is None:
        raise RuntimeError(f"scores of {job.title} could not be read back after scoring")
    scores = frame.select("logprob_0", "logprob_1").to_torch().double()
    probs = torch.softmax(scores, dim=1).float()
    return {
        **_metrics(probs, test),
        **(_supervision_on(job, store, test) if job.weak_model is not None else {}),
        "n_train": 0,
        "n_test": len(test),
        "shots": job.key["k"],
        "shots_mean": float(frame["demos_used"].mean() or 0.0),
        "backend": frame["backend"][0],
    }


def _supervision_on(job: Job, store: StudyStore, test: list[Example]) -> dict[str, float]:
    """The weak supervisor's and the strong ceiling's metrics on exactly the examples this
    baseline scored, so its PGR compares like with like when it scores part of the test set."""
    label_job, ceiling_job = job.deps[0], job.deps[1]
    weak = artifacts.load_labels(label_job)
    ceiling = artifacts.load_test_predictions(store, ceiling_job)
    if weak is None or ceiling is None:
        missing = label_job if weak is None else ceiling_job
        raise RuntimeError(f"the outputs of {missing} are missing; rerun the study to rebuild")
    out = {}
    for who, p1 in (("weak", weak), ("ceiling", ceiling)):
        metrics = _metrics(_probs(p1, test), test)
        out[f"{who}_accuracy_on_test"] = metrics["test_accuracy"]
        out[f"{who}_auroc_on_test"] = metrics["test_auroc"]
    return out


def _score_prompts(job: Job, study: Study, pool: list[Example], test: list[Example]) -> None:
    from transformers import AutoConfig, AutoTokenizer

    trust = study.spec.trust_remote_code
    model_path = study.cards[job.model].resolve_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust)
    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust)
    context = getattr(config, "max_position_embeddings", None) or 1024
    if job.weak_model is not None:  # the weak supervisor's hard labels on the student half
        soft = artifacts.load_labels(job.deps[0])
        if soft is None:
            raise RuntimeError(f"weak labels {job.deps[0]} are missing; rerun the study")
        shown = {ex.id: int(soft[ex.id] > 0.5) for ex in pool}
    else:
        shown = {ex.id: ex.label for ex in pool}
    demos = draw_demonstrations(pool, shown, job.key["k"], seed=job.seed or 0)
    fmt = study.prompt_format(job.dataset)
    budget = min(study.spec.baselines.max_prompt_tokens, int(context))
    encoded = encode_for_scoring(tokenizer, fmt, demos, [ex.text for ex in test], budget)
    backend = _backend(study)
    scores = backend.score_choices(model_path, encoded.prompts, encoded.choices)
    artifacts.save_scores(
        job.job_id, [ex.id for ex in test], scores, encoded.demos_used, backend.name
    )

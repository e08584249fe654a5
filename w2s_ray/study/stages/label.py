"""Each weak supervisor labels the student half and the test set: soft labels (its class
probabilities), cached across studies by job id; an answer task's supervisor writes answers.
A fine-tuned labeler's forward passes over a big pool run as shards (w2s_ray.study.sharding)."""

from __future__ import annotations

from typing import Any

import torch

from w2s_ray.datasets import Example
from w2s_ray.infer.backend import ClassifierRef
from w2s_ray.study import answers, artifacts, sharding
from w2s_ray.study.cost import study_sizes
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import (
    TORCH_HEAD,
    Parallel,
    backend,
    classifier_for,
    inputs_for,
    metrics_of,
    n_cut,
    probs_of,
)
from w2s_ray.study.work import Forward, Sizes, Work
from w2s_ray.train.loop import predict_probs
from w2s_ray.train.lora import full_weights, load_classifier

NAME = "label"


def plan(p: DatasetPlan) -> list[Job]:
    """Each weak model's labels per seed (and each weak-label ensemble member's)."""
    jobs = []
    for seed in p.study.spec.seeds:
        for weak in p.study.ensemble_labelers(p.dataset):
            *shards, p.labels[weak, seed] = _labeled_by(p, p.ground_truth[weak, seed])
            jobs += [*shards, p.labels[weak, seed]]
        for (weak, truth_seed, member), truth in p.member_truth.items():
            if truth_seed == seed:
                *shards, p.member_labels[weak, seed, member] = _labeled_by(p, truth)
                jobs += [*shards, p.member_labels[weak, seed, member]]
    return jobs


def _labeled_by(p: DatasetPlan, supervisor: Job) -> list[Job]:
    """The job that labels with `supervisor`'s model, after its shards if it has any."""
    key: dict[str, Any] = {"supervisor": supervisor.job_id}
    if "member" in supervisor.key:  # an ensemble member's labels are not a results row
        key["member"] = supervisor.key["member"]
    label = Job(
        job_id(NAME, key),
        NAME,
        p.dataset,
        supervisor.model,
        supervisor.seed,
        key=key,
        supervisor=supervisor.job_id,
        features=supervisor.features,
    )
    if p.study.spec.mode != "finetune":  # a cheap head over cached features
        return [label]
    rows = _rows(study_sizes(p.study))  # a backbone's forwards
    return sharding.split(label, rows, p.study.spec.resources.shard_rows)


def _rows(sizes: Sizes) -> int:
    return sizes.student_train + sizes.test


def _labels_cached(job_id: str) -> bool:
    return artifacts.load_labels(job_id) is not None


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any]:
    splits = splits_for(study, job.dataset, job.seed or 0)
    if job.dataset in study.answer_tasks:
        return answers.run_label(job, study, store, splits)
    examples = sharding.rows_of(job, splits.student_train + splits.test)
    assert job.supervisor is not None
    soft = artifacts.load_labels(job.job_id)
    if soft is None and job.shards:  # its shards labeled every row: merge them
        ids = [ex.id for ex in examples]
        made_by = sharding.merged_backend(job, artifacts.labels_path)
        artifacts.save_labels(job.job_id, ids, sharding.merged_labels(job, ids), made_by)
        soft = artifacts.load_labels(job.job_id)
    if soft is None and not sharding.merged_elsewhere(job, _labels_cached):
        probs, made_by = _weak_probs(job, study, store, examples)
        artifacts.save_labels(job.job_id, [ex.id for ex in examples], probs, made_by)
        soft = artifacts.load_labels(job.job_id)  # as stored: what students will train on
    if job.shard is not None:
        return sharding.shard_result(job, len(examples), n_cut=n_cut(study, job, examples))
    assert soft is not None
    return {
        **metrics_of(probs_of(soft, splits.test), splits.test),
        "n_train": len(splits.student_train),
        "n_cut": n_cut(study, job, examples),
        "backend": artifacts.made_by(artifacts.labels_path(job.job_id)),
    }


def _weak_probs(
    job: Job, study: Study, store: StudyStore, examples: list[Example]
) -> tuple[torch.Tensor, str]:
    """The supervisor's class probabilities for `examples`, and what computed them."""
    assert job.supervisor is not None
    weights_file = store.job_file(job.supervisor, "model.safetensors")
    if study.spec.mode == "finetune":  # a fine-tuned backbone: an inference backend's job
        card = study.cards[job.model]
        weights = store.read_bytes(weights_file)
        if weights is None:
            raise RuntimeError(f"weights {store.uri(weights_file)} are missing; rerun")
        # a LoRA supervisor's adapters are merged into its base: engines take whole models
        trust = study.spec.trust_remote_code
        base = card.resolve_path()
        weights = full_weights(weights, base, card.pooling, trust_remote_code=trust)
        classifier = ClassifierRef(base, card.pooling, weights)
        engine = backend(study, classifier.backbone, "pool")
        texts = [ex.text for ex in examples]
        probs = engine.label(classifier, texts, max_length=study.max_length(job.dataset))
        return probs, engine.name
    # a linear head on cached features: nothing to gain from an engine
    inputs = inputs_for(study, job, examples)
    model = classifier_for(study, job, inputs)
    load_classifier(model, artifacts.load_weights(store, weights_file))
    return predict_probs(model, inputs), TORCH_HEAD


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    if not sees_cache:
        return True
    if job.dataset in study.answer_tasks:
        return sharding.intact(job, answers.answers_cached)
    return sharding.intact(job, _labels_cached)


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    if job.shards:
        return sharding.MERGE
    n = sharding.planned_rows(job, _rows(sizes))
    if job.dataset in study.answer_tasks:
        return Work((Forward("answer", n),))
    if study.spec.mode != "finetune":
        return Work(heads=1)  # a linear head over cached features
    return Work((Forward("label", n),))

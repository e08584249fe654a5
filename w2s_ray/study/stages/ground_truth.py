"""Every ladder model fine-tuned on the weak-train half's true labels: the weak supervisor
of bigger models and the strong ceiling of its own pairs, at once."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from w2s_ray.study import answers, artifacts
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import Parallel, member_seed, metrics_of, train_and_evaluate
from w2s_ray.study.work import Sizes, Work, trained_and_scored

NAME = "ground_truth"


def plan(p: DatasetPlan) -> list[Job]:
    """A job per model and seed; a model with a generative fine-tune also gets a ceiling
    that starts from it (the ceiling of the students that do)."""
    study, jobs = p.study, []
    for seed in study.spec.seeds:
        for name in study.cards:
            key = {
                **p.model_key[name],
                "mode": study.spec.mode,
                "seed": seed,
                "train": study.train_config(name, seed, None).key(),
            }
            features = p.features[name].job_id if name in p.features else None
            job = Job(job_id(NAME, key), NAME, p.dataset, name, seed, key=key, features=features)
            p.ground_truth[name, seed] = job
            jobs.append(job)
            for member in range(1, _ensemble_size(p, name)):
                member_key = {
                    **key,
                    "member": member,
                    "train": study.train_config(name, member_seed(seed, member), None).key(),
                }
                twin = Job(
                    job_id(NAME, member_key),
                    NAME,
                    p.dataset,
                    name,
                    seed,
                    key=member_key,
                    features=features,
                )
                p.member_truth[name, seed, member] = twin
                jobs.append(twin)
            if name in p.adapted:
                start = p.adapted[name].job_id
                key = {**key, "backbone": start}
                jobs.append(
                    Job(job_id(NAME, key), NAME, p.dataset, name, seed, key=key, backbone=start)
                )
    return jobs


def _ensemble_size(p: DatasetPlan, model: str) -> int:
    """How many times `model` trains on its half per seed: once, or the largest
    `ensemble_seeds` of the methods when it is the weak model of a pair."""
    if not any(weak == model for weak, _ in p.study.pairs):
        return 1
    methods = p.study.methods_for(p.dataset)
    return max((m.weak_labels.ensemble_seeds for m in methods if m.weak_labels), default=1)


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any] | None:
    splits = splits_for(study, job.dataset, job.seed or 0)
    if job.dataset in study.answer_tasks:
        return answers.run_ground_truth(job, study, store, splits) if parallel.rank == 0 else None
    labels = torch.tensor([ex.label for ex in splits.weak_train])
    targets = nn.functional.one_hot(labels, 2).float()
    trained = train_and_evaluate(
        job, study, store, splits.weak_train, targets, splits.test, parallel
    )
    if trained is None:
        return None
    probs, info = trained
    # the ceiling's own test predictions: prompting baselines on a subset of the test set
    # compare with the ceiling on exactly their examples
    artifacts.save_test_predictions(store, job.job_id, [ex.id for ex in splits.test], probs)
    counts = {k: info[k] for k in ("n_cut", "n_dropped_conflicting")}
    return {**metrics_of(probs, splits.test), **counts, "n_train": len(splits.weak_train)}


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    """A classifier's weights and test predictions live in the study; an answer task's
    model is a folder in the cache."""
    from w2s_ray.study.integrity import store_weights_intact

    if job.dataset in study.answer_tasks:
        return not sees_cache or artifacts.load_backbone_record(job.job_id) is not None
    weights = store.job_file(job.job_id, "model.safetensors")
    predictions = artifacts.load_test_predictions(store, job.job_id)
    return store_weights_intact(store, weights) and predictions is not None


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    return trained_and_scored(job, study, sizes.weak_train, sizes.test)

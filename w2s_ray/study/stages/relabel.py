"""Weak labels processed before students learn them (methods with `weak_labels`): an
ensemble's mean, a probe's relabeling or filtering on the strong model's own features, the
least confident left out. One job per processing of one set of labels, shared by every
method and student that asks for the same; its output is a labels file like a label job's,
holding only the pool examples the students keep."""

from __future__ import annotations

from typing import Any

import torch

from w2s_ray.spec import WeakLabelSpec
from w2s_ray.study import artifacts
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.folds import assign_folds
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.label_processing import ensemble_mean, process
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.stages.weak_labels import trained_pairs
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import TORCH_HEAD, Parallel, metrics_of, probs_of
from w2s_ray.study.work import Sizes, Work

NAME = "relabel"
PROBE_FOLDS = 4  # the logistic probe is cross-fitted like a bootstrap rung


def plan(p: DatasetPlan) -> list[Job]:
    """A relabel job per distinct processing; records it as the teacher of its students."""
    jobs: dict[str, Job] = {}
    for seed, weak, strong, method in trained_pairs(p):
        spec = method.weak_labels
        if spec is None or not spec.changes_labels():
            continue
        teacher = p.teachers[seed, weak, strong, method.name]
        members = [p.member_labels[weak, seed, m] for m in range(1, spec.ensemble_seeds)]
        members += [p.labels[m, seed] for m in spec.ensemble_models if m != weak]
        key: dict[str, Any] = {
            "labels": teacher.job_id,
            "members": [m.job_id for m in members],
            "processing": spec.identity(),
            "seed": seed,
        }
        features = p.probe_features[strong].job_id if spec.probe is not None else None
        if features is not None:
            key["features"] = features
        job = Job(
            job_id(NAME, key),
            NAME,
            p.dataset,
            strong if features is not None else weak,  # the model whose features it reads
            seed,
            weak_model=weak,
            method=spec.label(),  # not a method's name: what was done to the labels
            key=key,
            labels=teacher.job_id,
            features=features,
            members=tuple(m.job_id for m in members),
        )
        jobs.setdefault(job.job_id, job)
        p.teachers[seed, weak, strong, method.name] = jobs[job.job_id]
    return list(jobs.values())


def _spec(study: Study, job: Job) -> WeakLabelSpec:
    """The processing a job runs: any method's whose settings hash to the job's."""
    for method in study.spec.methods:
        spec = method.weak_labels
        if spec is not None and spec.identity() == job.key["processing"]:
            return spec
    raise RuntimeError(f"{job.title}: no method of the study processes labels this way")


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any]:
    splits = splits_for(study, job.dataset, job.seed or 0)
    pool, test = splits.student_train, splits.test
    assert job.labels is not None
    sources = [artifacts.required_labels(i) for i in (job.labels, *job.members)]
    pool_p1 = ensemble_mean([probs_of(s, pool)[:, 1] for s in sources])
    test_p1 = ensemble_mean([probs_of(s, test)[:, 1] for s in sources])
    features = None
    if job.features is not None:
        features = artifacts.required_features(job.features, [ex.id for ex in pool])
    fold_of = assign_folds(pool, PROBE_FOLDS, job.seed or 0)
    processed = process(
        _spec(study, job),
        pool_p1,
        features,
        [ex.group for ex in pool],
        [fold_of[ex.id] for ex in pool],
    )
    kept = processed.keep.nonzero().flatten().tolist()
    p1 = torch.cat([processed.p1[kept], test_p1])
    ids = [pool[i].id for i in kept] + [ex.id for ex in test]
    artifacts.save_labels(job.job_id, ids, torch.stack([1 - p1, p1], dim=1), TORCH_HEAD)
    weak_hard = probs_of(sources[0], pool)[:, 1] > 0.5
    truth = torch.tensor([ex.label for ex in pool]).bool()
    hard = processed.p1 > 0.5
    return {
        "n_pool": len(pool),
        "n_kept": len(kept),
        "n_label_dropped": len(pool) - len(kept),
        "n_label_flipped": int((hard != weak_hard)[kept].sum()),
        # against the truth, for the reader only: no student sees these numbers
        "pool_label_accuracy_before": float((weak_hard == truth).float().mean()),
        "pool_label_accuracy_after": float((hard == truth)[kept].float().mean()),
        **metrics_of(torch.stack([1 - test_p1, test_p1], dim=1), test),
    }


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    return not sees_cache or artifacts.load_labels(job.job_id) is not None


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    return Work(heads=1)  # probes and averages over cached labels and features

"""Bootstrapping: each intermediate rung between a weak and a strong model learns the
previous rung's labels and labels the student half for the next. A rung depends on the one
before; a rung shared by several pairs runs once."""

from __future__ import annotations

from typing import Any

import torch

from w2s_ray.study import artifacts
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.folds import assign_folds
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.stages.weak_labels import BOOTSTRAP_FOLDS, trained_on, trained_pairs
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import (
    TORCH_HEAD,
    Parallel,
    metrics_of,
    probs_of,
    train_and_evaluate,
)
from w2s_ray.study.work import Sizes, Work, trained_and_scored
from w2s_ray.train.metrics import agreement

NAME = "bootstrap"


def plan(p: DatasetPlan) -> list[Job]:
    """The rungs of every bootstrapped pair; records each student's teacher (the last rung,
    or the weak labels for the other methods)."""
    rungs: dict[str, Job] = {}
    for seed, weak, strong, method in trained_pairs(p):
        teacher = p.labels[weak, seed]
        for rung in p.study.between(weak, strong) if method.bootstrap else []:
            teacher = trained_on(p, NAME, rung, seed, weak, method, teacher)
            rungs.setdefault(teacher.job_id, teacher)
        p.teachers[seed, weak, strong, method.name] = teacher
    return list(rungs.values())


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any] | None:
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
    assert job.labels is not None
    previous = artifacts.required_labels(job.labels)
    folds = int(job.key["folds"])
    fold_of = assign_folds(pool, folds, job.seed or 0)
    fold_train = [[ex for ex in pool if fold_of[ex.id] != fold] for fold in range(folds)]
    labels = artifacts.load_labels(job.job_id)
    if labels is None:
        held_out_probs: dict[str, torch.Tensor] = {}
        test_probs = []
        for fold, train in enumerate(fold_train):
            own = [ex for ex in pool if fold_of[ex.id] == fold]
            trained = train_and_evaluate(
                job,
                study,
                store,
                train,
                probs_of(previous, train),
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
        # the fold models predict where they trained: a transformers forward, or a probe head
        made_by = "transformers" if study.spec.mode == "finetune" else TORCH_HEAD
        artifacts.save_labels(job.job_id, [ex.id for ex in pool + splits.test], probs, made_by)
        labels = artifacts.load_labels(job.job_id)  # as stored: what the next rung trains on
    if parallel.rank != 0 or labels is None:
        return None
    probs = probs_of(labels, splits.test)
    return {
        **metrics_of(probs, splits.test),
        "n_train": min(len(train) for train in fold_train),
        "n_folds": folds,
        "n_pool": len(pool),
        "agreement_with_weak": agreement(probs, probs_of(previous, splits.test)),
        "chain": ">".join(job.chain),
    }


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    return not sees_cache or artifacts.load_labels(job.job_id) is not None


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    """A model per fold, each trained on the other folds and labelling its own and the test
    set."""
    folds = int(job.key.get("folds", BOOTSTRAP_FOLDS))
    fold_n = sizes.student_train * (folds - 1) // folds
    one = trained_and_scored(job, study, fold_n, sizes.student_train // folds + sizes.test)
    return Work(one.passes * folds, one.heads * folds)

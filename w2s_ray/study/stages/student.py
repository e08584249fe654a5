"""Every weak < strong pair × method: the strong model learns the weak labels (the last
bootstrap rung's, processed ones, or the previous round's) and is scored on the ground truth
of the test set, and on the examples it learned from (misfit, the next round's labels)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from w2s_ray.study import answers, artifacts
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.diagnostics import student_diagnostics
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.stages.weak_labels import trained_on, trained_pairs
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

NAME = "student"


def plan(p: DatasetPlan) -> list[Job]:
    """Every pair × method; an iterated method's rounds each learn the round before."""
    jobs = []
    for seed, weak, strong, method in trained_pairs(p):
        teacher = p.teachers[seed, weak, strong, method.name]
        backbone = p.adapted.get(strong) if method.generative else None
        for round_ in range(1, method.rounds + 1):
            job = trained_on(p, NAME, strong, seed, weak, method, teacher, backbone, round_)
            jobs.append(replace(job, weak_labels=p.labels[weak, seed].job_id))
            teacher = job
    return jobs


def _learns_next(job: Job, study: Study) -> bool:
    """Whether a later round learns this student's predictions."""
    method = study.method(job.method)
    return method is not None and int(job.key.get("round", 1)) < method.rounds


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any] | None:
    """Train the strong model on its labels (the weak model's soft labels, processed ones,
    or the last round's); evaluate on ground truth and on the examples it learned from."""
    splits = splits_for(study, job.dataset, job.seed or 0)
    if job.dataset in study.answer_tasks:
        return answers.run_student(job, study, store, splits) if parallel.rank == 0 else None
    assert job.labels is not None
    soft = artifacts.required_labels(job.labels)
    # a filtering relabel job keeps only some of the student half
    train = [ex for ex in splits.student_train if ex.id in soft]
    targets = probs_of(soft, train)
    trained = train_and_evaluate(job, study, store, train, targets, train + splits.test, parallel)
    if trained is None:
        return None
    probs, info = trained
    pool_probs, test_probs = probs[: len(train)], probs[len(train) :]
    if _learns_next(job, study):  # the next round's labels: this student's predictions
        made_by = "transformers" if study.spec.mode == "finetune" else TORCH_HEAD
        artifacts.save_labels(job.job_id, [ex.id for ex in train + splits.test], probs, made_by)
    weak = soft  # the pair's own weak labels, read again only if the student learned others
    if job.weak_labels is not None and job.weak_labels != job.labels:
        weak = artifacts.required_labels(job.weak_labels)
    test_labels = torch.tensor([ex.label for ex in splits.test])
    flipped = (targets[:, 1] > 0.5) != (probs_of(weak, train)[:, 1] > 0.5)
    return {
        **metrics_of(test_probs, splits.test),
        **info,
        "n_train": len(train),
        "n_label_dropped": len(splits.student_train) - len(train),
        "n_label_flipped": int(flipped.sum()),
        "agreement_with_weak": agreement(test_probs, probs_of(soft, splits.test)),
        "chain": ">".join(job.chain) if job.chain else None,
        **student_diagnostics(
            pool_probs[:, 1],
            targets[:, 1],
            test_probs[:, 1],
            probs_of(weak, splits.test)[:, 1],
            test_labels,
        ),
    }


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    """Only a student whose predictions a later round learns leaves something behind."""
    if not sees_cache or not _learns_next(job, study):
        return True
    return artifacts.load_labels(job.job_id) is not None


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    """Trained on the student half, then scoring it (diagnostics, next round) and the test set."""
    return trained_and_scored(job, study, sizes.student_train, sizes.student_train + sizes.test)

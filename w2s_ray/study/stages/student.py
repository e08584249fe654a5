"""Every weak < strong pair × method: the strong model learns the weak labels (or the last
bootstrap rung's) and is scored on the ground truth of the test set."""

from __future__ import annotations

from typing import Any

from w2s_ray.study import answers, artifacts
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.stages.weak_labels import trained_on, trained_pairs
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import Parallel, metrics_of, probs_of, train_and_evaluate
from w2s_ray.study.work import Sizes, Work, trained_and_scored
from w2s_ray.train.metrics import agreement

NAME = "student"


def plan(p: DatasetPlan) -> list[Job]:
    jobs = []
    for seed, weak, strong, method in trained_pairs(p):
        teacher = p.teachers[seed, weak, strong, method.name]
        backbone = p.adapted.get(strong) if method.generative else None
        jobs.append(trained_on(p, NAME, strong, seed, weak, method, teacher, backbone))
    return jobs


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any] | None:
    """Train the strong model on the weak model's soft labels; evaluate on ground truth."""
    splits = splits_for(study, job.dataset, job.seed or 0)
    if job.dataset in study.answer_tasks:
        return answers.run_student(job, study, store, splits) if parallel.rank == 0 else None
    label_job = job.labels
    assert label_job is not None
    soft = artifacts.load_labels(label_job)
    if soft is None:
        raise RuntimeError(f"weak labels {label_job} are missing; rerun the study to rebuild")
    trained = train_and_evaluate(
        job,
        study,
        store,
        splits.student_train,
        probs_of(soft, splits.student_train),
        splits.test,
        parallel,
    )
    if trained is None:
        return None
    probs, info = trained
    weak_probs = probs_of(soft, splits.test)
    return {
        **metrics_of(probs, splits.test),
        **info,
        "n_train": len(splits.student_train),
        "agreement_with_weak": agreement(probs, weak_probs),
        "chain": ">".join(job.chain) if job.chain else None,
    }


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    return True  # a student leaves nothing another job reads


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    return trained_and_scored(job, study, sizes.student_train, sizes.test)

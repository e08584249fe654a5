"""Probe mode: each ladder model's frozen, pooled features of the dataset's pool and test
examples, computed once and cached across studies by job id."""

from __future__ import annotations

from typing import Any

from w2s_ray.study import artifacts, data_prep
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import Parallel, backend, n_cut
from w2s_ray.study.work import Forward, Sizes, Work

NAME = "features"


def plan(p: DatasetPlan) -> list[Job]:
    """A features job per model in probe mode; every model's later jobs hash its id."""
    jobs = []
    for name, card in p.study.cards.items():
        key = {**card.identity(), "params": card.params, "pooling": card.pooling, **p.data_key}
        if p.study.spec.mode != "probe":
            p.model_key[name] = key
            continue
        job = Job(job_id(NAME, key), NAME, p.dataset, name, key=key)
        p.features[name] = job
        p.model_key[name] = {"features": job.job_id}
        jobs.append(job)
    return jobs


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any]:
    pool, test = data_prep.pool_and_test(study, job.dataset)
    examples = pool + test
    if artifacts.load_features(job.job_id) is None:
        card = study.cards[job.model]
        engine = backend(study, card.resolve_path(), "pool")
        features = engine.features(
            card.resolve_path(),
            [ex.text for ex in examples],
            pooling=card.pooling,
            max_length=study.max_length(job.dataset),
        )
        artifacts.save_features(job.job_id, [ex.id for ex in examples], features, engine.name)
    return {
        "n_examples": len(examples),
        "n_cut": n_cut(study, job, examples),
        "backend": artifacts.made_by(artifacts.features_path(job.job_id)),
    }


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    from w2s_ray.study.integrity import cached_features_intact

    return not sees_cache or cached_features_intact(job.job_id)


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    return Work((Forward("features", sizes.weak_train + sizes.student_train + sizes.test),))

"""Probe mode: each ladder model's frozen, pooled features of the dataset's pool and test
examples, computed once and cached across studies by job id (by shards over a big pool,
w2s_ray.study.sharding)."""

from __future__ import annotations

from typing import Any

from w2s_ray.study import artifacts, data_prep, sharding
from w2s_ray.study.cost import study_sizes
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.integrity import cached_features_intact
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import Parallel, backend, n_cut
from w2s_ray.study.work import Forward, Sizes, Work

NAME = "features"


def plan(p: DatasetPlan) -> list[Job]:
    """A features job per model in probe mode, whose id every later job of the model hashes;
    in finetune mode, one per strong model whose weak labels a probe reads."""
    jobs = []
    probed = _probed_models(p)
    probe_mode = p.study.spec.mode == "probe"
    for name, card in p.study.cards.items():
        key = {**card.identity(), "params": card.params, "pooling": card.pooling, **p.data_key}
        if not probe_mode:
            p.model_key[name] = key
            if name not in probed:
                continue
        job = Job(job_id(NAME, key), NAME, p.dataset, name, key=key)
        rows = _rows(study_sizes(p.study))
        *shards, job = sharding.split(job, rows, p.study.spec.resources.shard_rows)
        p.probe_features[name] = job
        if probe_mode:
            p.features[name] = job
            p.model_key[name] = {"features": job.job_id}
        jobs += [*shards, job]
    return jobs


def _probed_models(p: DatasetPlan) -> set[str]:
    """Strong models whose frozen features a weak-label probe reads."""
    return {
        strong
        for method in p.study.methods_for(p.dataset)
        if method.weak_labels is not None and method.weak_labels.probe is not None
        for _, strong in p.study.pairs
    }


def _rows(sizes: Sizes) -> int:
    return sizes.weak_train + sizes.student_train + sizes.test


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any]:
    pool, test = data_prep.pool_and_test(study, job.dataset)
    examples = sharding.rows_of(job, pool + test)
    cached = artifacts.load_features(job.job_id) is not None
    if not cached and job.shards:  # its shards computed every row: merge them
        ids = [ex.id for ex in examples]
        made_by = sharding.merged_backend(job, artifacts.features_path)
        artifacts.save_features(job.job_id, ids, sharding.merged_features(job, ids), made_by)
    elif not cached and not sharding.merged_elsewhere(job, cached_features_intact):
        card = study.cards[job.model]
        engine = backend(study, card.resolve_path(), "pool")
        features = engine.features(
            card.resolve_path(),
            [ex.text for ex in examples],
            pooling=card.pooling,
            max_length=study.max_length(job.dataset),
        )
        artifacts.save_features(job.job_id, [ex.id for ex in examples], features, engine.name)
    if job.shard is not None:
        return sharding.shard_result(job, len(examples), n_cut=n_cut(study, job, examples))
    return {
        "n_examples": len(examples),
        "n_cut": n_cut(study, job, examples),
        "backend": artifacts.made_by(artifacts.features_path(job.job_id)),
    }


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    return not sees_cache or sharding.intact(job, cached_features_intact)


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    if job.shards:
        return sharding.MERGE
    return Work((Forward("features", sharding.planned_rows(job, _rows(sizes))),))

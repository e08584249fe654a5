"""Generative fine-tuning: a strong decoder first learns the pool's texts as a language model
(never the test set, never a label); the ceiling and the students of a `generative` method
start from that model, which the cache keeps as a folder under the job's id."""

from __future__ import annotations

from typing import Any

from w2s_ray.study import artifacts, data_prep
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.lm_jobs import cached_lm_finetune
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import Parallel
from w2s_ray.study.work import Sizes, Train, Work

NAME = "generative"


def lm_train_settings(study: Study, model: str) -> dict[str, Any]:
    """What a generative (language-model) fine-tune takes from `train:`: the batch size and
    the dropout switch (its clipping is fixed: see w2s_ray.train.generative)."""
    t = study.spec.train
    return {"batch_size": t.batch_size or study.cards[model].batch_size, "dropout": t.dropout}


def plan(p: DatasetPlan) -> list[Job]:
    """One language-model fine-tune per strong decoder that a generative method trains
    (binary tasks only: an answer task's models are language models already)."""
    study = p.study
    if p.answers or not any(m.generative for m in study.spec.methods):
        return []
    for model in study.strong_decoders():
        settings = {**study.spec.generative.model_dump(), **lm_train_settings(study, model)}
        key = {**p.model_key[model], "generative": settings}
        if study.spec.generative.lr is None:
            key["generative"]["lr"] = study.cards[model].lr
        p.adapted[model] = Job(job_id(NAME, key), NAME, p.dataset, model, key=key)
    return list(p.adapted.values())


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any]:
    pool, _ = data_prep.pool_and_test(study, job.dataset)
    card = study.cards[job.model]

    def texts() -> tuple[list[list[int]], None]:
        tokenizer = data_prep.tokenizer_for(study, card.resolve_path())
        return data_prep.encode(study, job.dataset, tokenizer, [ex.text for ex in pool]), None

    gen, settings = study.spec.generative, lm_train_settings(study, job.model)
    _, record = cached_lm_finetune(
        job, study, store, texts, epochs=gen.epochs, lr=gen.lr or card.lr, seed=0, **settings
    )
    return {**record, "n_train": len(pool)}


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    return not sees_cache or artifacts.load_backbone_record(job.job_id) is not None


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    batch = lm_train_settings(study, job.model)["batch_size"]
    pool = sizes.weak_train + sizes.student_train
    return Work((Train(pool, study.spec.generative.epochs, batch, language_model=True),))

"""Planning shared by the stages that train on weak labels (bootstrap rungs and students):
which (seed, weak, strong, method) combinations train, and the job that trains a model on
another job's labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from w2s_ray.spec import MethodSpec
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.stages.base import DatasetPlan

# A bootstrap rung labels the student half out of fold: one model per fold, each trained on
# the other folds' examples, so no example is labeled by a model that trained on it. With 4
# folds each model learns from 3/4 of the student half (2 folds gave only half of what a
# direct student learns from), for 3 student-sized trainings per rung. Part of a rung's id.
BOOTSTRAP_FOLDS = 4


def trained_pairs(p: DatasetPlan) -> Iterator[tuple[int, str, str, MethodSpec]]:
    """(seed, weak, strong, method) for every student of the dataset, in plan order."""
    study = p.study
    for seed in study.spec.seeds:
        for weak in sorted({w for w, _ in study.pairs}):
            for w, strong in study.pairs:
                if w != weak:
                    continue
                for method in study.methods_for(p.dataset):
                    if method.bootstrap and not study.between(weak, strong):
                        continue  # no rung between: the same as the method without it
                    if method.generative and strong not in p.adapted:
                        continue  # an encoder: no language model to fine-tune
                    if not study.members_below(method, weak, strong):
                        continue  # an ensemble member as strong as the student: not weak
                    yield seed, weak, strong, method


def trained_on(
    p: DatasetPlan,
    stage: str,
    model: str,
    seed: int,
    weak: str,
    method: MethodSpec,
    teacher: Job,
    backbone: Job | None = None,
    round_: int = 1,
) -> Job:
    """A job that trains `model` on `teacher`'s labels: a student, or a bootstrap rung; from
    `backbone`'s generatively fine-tuned copy of the model when given; `round_` of an
    iterated method."""
    study = p.study
    chain = (*(teacher.chain or (weak,)), model)
    key = {
        **p.model_key[model],
        "mode": study.spec.mode,
        "labels": teacher.job_id,
        "method": method.name,
        "train": study.train_config(model, seed, method).key(),
        **_method_key(method),
    }
    if stage == "bootstrap":
        key["folds"] = BOOTSTRAP_FOLDS
    elif method.rounds > 1:
        key["round"] = round_
    if backbone is not None:
        key["backbone"] = backbone.job_id
    return Job(
        job_id(stage, key),
        stage,
        p.dataset,
        model,
        seed,
        weak_model=weak,
        method=method.name,
        key=key,
        chain=chain if len(chain) > 2 or stage == "bootstrap" else (),
        labels=teacher.job_id,
        features=key.get("features"),
        backbone=backbone.job_id if backbone is not None else None,
    )


def _method_key(method: MethodSpec) -> dict[str, Any]:
    """What a method adds to a job's identity beyond its loss (defaults add nothing, so the
    ids of studies planned before these options existed stay the same)."""
    key: dict[str, Any] = {}
    if method.select != "last":
        key["select"] = [method.select, method.val_fraction]
    if method.bootstrap:
        key["bootstrap"] = True
    if method.rounds > 1:
        key["rounds"] = method.rounds
    return key

"""The stages of a study, a module each, in the order graph.STAGES names them."""

from __future__ import annotations

from w2s_ray.study.graph import STAGES, Job
from w2s_ray.study.stages import (
    baseline,
    bootstrap,
    features,
    generative,
    ground_truth,
    label,
    relabel,
    student,
)
from w2s_ray.study.stages.base import DatasetPlan, Stage

MODULES: dict[str, Stage] = {
    m.NAME: m  # type: ignore[misc]  # a module satisfies the Protocol structurally
    for m in (features, generative, ground_truth, label, bootstrap, relabel, student, baseline)
}
assert tuple(MODULES) == STAGES, "a stage module is missing or out of order"


def stage_of(job: Job) -> Stage:
    return MODULES[job.stage]


__all__ = ["MODULES", "DatasetPlan", "Stage", "stage_of"]

"""StudySpec -> the job graph. Each stage module plans its own jobs from what the stages
before it planned for the same dataset; each job's id hashes everything that changes its
numbers.

Stages (w2s_ray.study.stages, in order): `features` (probe mode: frozen features per model
× dataset), `generative` (language-model fine-tunes the `generative` methods start from),
`ground_truth` (every ladder model on true labels: weak supervisor and ceiling at once),
`label` (each weak model labels the student half and the test set), `bootstrap` (rungs
between weak and strong), `relabel` (weak labels averaged over an ensemble, relabeled or
filtered by probes, or thinned by confidence), `student` (every weak < strong pair ×
method, and each round of an iterated method), `baseline`
(zero/few-shot prompting of each strong decoder).
"""

from __future__ import annotations

from w2s_ray.study.graph import PLAN_VERSION, STAGES, Job
from w2s_ray.study.resolve import Study, dataset_identity, resolve
from w2s_ray.study.stages import MODULES, DatasetPlan
from w2s_ray.study.stages.weak_labels import BOOTSTRAP_FOLDS

__all__ = ["BOOTSTRAP_FOLDS", "PLAN_VERSION", "STAGES", "Job", "Study", "plan_jobs", "resolve"]


def plan_jobs(study: Study) -> dict[str, list[Job]]:
    """Every job of the study, grouped by stage in run order; ids are content hashes."""
    spec = study.spec
    stages: dict[str, list[Job]] = {name: [] for name in STAGES}
    for dataset in spec.dataset_names():
        data_key = {
            **dataset_identity(study, dataset),
            "data": spec.data.model_dump(),
            "max_length": study.max_length(dataset),
        }
        if spec.data.too_long == "drop":  # what is dropped depends on every model's tokenizer
            data_key["length_models"] = study.length_models()
        planned = DatasetPlan(study, dataset, data_key)
        for name, stage in MODULES.items():
            stages[name] += stage.plan(planned)
    return stages

"""What every stage module provides (one Protocol), and the planning state stages share.

A stage module plans its jobs from what the stages before it planned for the same dataset,
runs one job, and says whether what a finished job left for later jobs can still be read.
It also says what a job does to its model (`work`: training and forward passes, or probe
heads), from which cost.py prices its seconds and memory and resources.py its request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from w2s_ray.study.graph import Job

if TYPE_CHECKING:
    from w2s_ray.study.resolve import Study
    from w2s_ray.study.store import StudyStore
    from w2s_ray.study.training import Parallel


@dataclass
class DatasetPlan:
    """One dataset's jobs as the stages plan them, in stage order: each stage reads what the
    ones before it left here and records its own jobs for the ones after it."""

    study: Study
    dataset: str
    data_key: dict[str, Any]  # the dataset's identity, data settings and max_length
    # per model: what its jobs' ids hash (its identity, or its features job in probe mode)
    model_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    features: dict[str, Job] = field(default_factory=dict)  # by model
    adapted: dict[str, Job] = field(default_factory=dict)  # generative fine-tunes, by model
    ground_truth: dict[tuple[str, int], Job] = field(default_factory=dict)  # (model, seed)
    labels: dict[tuple[str, int], Job] = field(default_factory=dict)  # (weak model, seed)
    # frozen features of the strong models that weak-label probes read, by model (probe mode:
    # the `features` jobs themselves)
    probe_features: dict[str, Job] = field(default_factory=dict)
    # ensemble members: ground truth and labels of a weak model trained with another seed
    # on the same half, by (model, seed, member); member 0 is the plain job
    member_truth: dict[tuple[str, int, int], Job] = field(default_factory=dict)
    member_labels: dict[tuple[str, int, int], Job] = field(default_factory=dict)
    # the job whose labels a student learns: (seed, weak, strong, method) -> label, rung or
    # relabel job
    teachers: dict[tuple[int, str, str, str], Job] = field(default_factory=dict)

    @property
    def answers(self) -> bool:
        """A generative task (answers scored by exact match)."""
        return self.dataset in self.study.answer_tasks


class Stage(Protocol):
    """A stage module (w2s_ray.study.stages.<name>)."""

    NAME: str

    def plan(self, dataset: DatasetPlan) -> list[Job]: ...

    def run(
        self, job: Job, study: Study, store: StudyStore, parallel: Parallel
    ) -> dict[str, Any] | None: ...

    def outputs_intact(
        self, job: Job, study: Study, store: StudyStore, sees_cache: bool
    ) -> bool: ...

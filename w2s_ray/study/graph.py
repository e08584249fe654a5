"""The job graph's vocabulary: a Job with typed inputs, its content-hash id, and the stage
list, defined once. Light on purpose: `status` imports it without torch or registries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

PLAN_VERSION = 2  # bump when a code change alters results, so old job ids stop matching
# The stages in the order their jobs can first run; w2s_ray.study.stages has a module each.
STAGES = (
    "features",
    "generative",
    "ground_truth",
    "label",
    "bootstrap",
    "relabel",
    "student",
    "baseline",
)
# Stages whose jobs are scored on the test set: a row each in results.parquet.
EVALUATED_STAGES = ("ground_truth", "label", "bootstrap", "student", "baseline")


@dataclass(frozen=True)
class Job:
    job_id: str
    stage: str
    dataset: str
    model: str  # the model this job runs (the student's strong model; the labeler's weak one)
    seed: int | None = None
    weak_model: str | None = None
    method: str | None = None
    key: dict[str, Any] = field(default_factory=dict, compare=False)
    chain: tuple[str, ...] = ()  # bootstrapping: the models labels passed through, weak first
    # What the job reads, each the id of the job that makes it:
    labels: str | None = None  # labels it trains on (a label job or a bootstrap rung), or
    # shows as demonstrations (a weak few-shot baseline)
    supervisor: str | None = None  # the ground-truth job whose model labels (label jobs)
    ceiling: str | None = None  # the strong ceiling a weak few-shot baseline compares with
    features: str | None = None  # frozen features (probe mode)
    backbone: str | None = None  # a generative job whose fine-tuned model this job starts from
    weak_labels: str | None = None  # a student's pair's own weak labels (diagnostics)
    members: tuple[str, ...] = ()  # label jobs a weak-label ensemble averages (relabel jobs)
    # Inference over a big pool, split (w2s_ray.study.sharding): a shard computes slice
    # (index, count) of its parent's rows; the parent merges its `shards`' outputs.
    shard: tuple[int, int] | None = None
    shards: tuple[str, ...] = ()

    @property
    def deps(self) -> tuple[str, ...]:
        """Every job that must finish first: derived from the typed inputs, never set."""
        inputs = (
            self.labels,
            self.supervisor,
            self.ceiling,
            self.features,
            self.backbone,
            self.weak_labels,
            *self.members,
            *self.shards,
        )
        return tuple(dict.fromkeys(i for i in inputs if i is not None))

    @property
    def title(self) -> str:
        pair = f"{self.weak_model}→{self.model}" if self.weak_model else self.model
        if len(self.chain) > 2:
            pair = "→".join(self.chain)
        if self.backbone is not None:
            pair += " (generative)"
        parts = [
            self.stage,
            self.dataset,
            pair,
            self.method,
            f"round {self.key['round']}" if "round" in self.key else None,
            None if self.seed is None else f"seed {self.seed}",
            None if self.shard is None else f"shard {self.shard[0] + 1}/{self.shard[1]}",
        ]
        return " ".join(p for p in parts if p)


def job_id(stage: str, key: dict[str, Any]) -> str:
    blob = json.dumps({"v": PLAN_VERSION, "stage": stage, **key}, sort_keys=True, default=str)
    return f"{stage}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def row_of(stage: str, shard: bool) -> str:
    """The row a job counts in where jobs are counted by stage (`status`, the live table):
    a stage's shards get their own, so the stage's own row counts its results."""
    return f"{stage} shards" if shard else stage

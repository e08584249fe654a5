"""What a study will cost before it runs: each job's FLOPs, resource request, estimated
seconds (w2s_ray.study.cost) and GPU memory.

FLOPs follow the usual transformer rule: 2·N per token forward, 6·N per token for a
training step. Sizes are upper bounds (every text at `max_length` tokens, the spec's
`n_train`/`n_test` caps), so the FLOPs err high; jobs that only train a probe head cost
next to nothing beside the feature pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from w2s_ray.study.cost import gpu_memory_bytes, job_seconds, work_of
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.resources import job_resources, worker_plan
from w2s_ray.study.work import Train

PLANNING_CLUSTER = {"CPU": 1e9, "GPU": 1e9, "memory": 1e18}  # show the cards' own requests


@dataclass(frozen=True)
class JobCost:
    flops: float
    resources: dict[str, float]  # a Ray Train job's: its workers' together, and "workers"
    seconds: float  # estimated wall time (w2s_ray.study.cost.job_seconds)
    gpu_bytes: float | None  # estimated peak memory on its one GPU; None: no GPU, or several

    def device_seconds(self, unit: str) -> float:
        """What the job holds of `unit` ("GPU" or "CPU") × its seconds."""
        return self.resources.get(unit, 0.0) * self.seconds


def job_flops(job: Job, study: Study) -> float:
    """2·N per token forward, 6·N per token trained (4·N with LoRA: no weight gradients of
    the frozen layers; 2·N more with activation checkpointing), over what the job's stage
    does."""
    card = study.cards[job.model]
    length = study.max_length(job.dataset)
    flops = 0.0
    for step in work_of(job, study).passes:
        if isinstance(step, Train):
            per_token = step.flops_per_param_token
            flops += per_token * card.params * length * step.examples * step.epochs
        else:
            flops += 2.0 * card.params * (step.tokens or length) * step.examples
    return flops


def job_cost(job: Job, study: Study, gpu_cluster: bool = True) -> JobCost:
    cluster = PLANNING_CLUSTER if gpu_cluster else {**PLANNING_CLUSTER, "GPU": 0.0}
    workers = worker_plan(job, study, cluster)
    if workers is None:
        resources = job_resources(job, study, cluster)
        count = 1
    else:
        count = workers.workers
        total = {k: v * count for k, v in workers.per_worker.items()}
        resources = {**total, "workers": float(count)}
    seconds = job_seconds(job, study, gpu_cluster, workers=count)
    one_gpu = 0 < resources.get("GPU", 0.0) <= 1
    memory = gpu_memory_bytes(job, study) if one_gpu else None
    return JobCost(job_flops(job, study), resources, seconds, memory)


def describe_resources(resources: dict[str, float]) -> str:
    parts = []
    if resources.get("GPU"):
        parts.append(f"{resources['GPU']:g} GPU")
    parts.append(f"{resources.get('CPU', 0):g} CPU")
    if resources.get("memory"):
        parts.append(f"{resources['memory'] / 1024**3:.1f} GiB")
    if resources.get("workers", 1) > 1:
        parts.append(f"× {resources['workers']:g} workers")
    return ", ".join(parts)

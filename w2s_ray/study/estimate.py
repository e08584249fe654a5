"""What a study will cost before it runs: each job's FLOPs, resource request, estimated
seconds (w2s_ray.study.cost) and GPU memory.

FLOPs follow the usual transformer rule: 2·N per token forward, 6·N per token for a
training step. Sizes are upper bounds (every text at `max_length` tokens, the spec's
`n_train`/`n_test` caps), so the FLOPs err high; jobs that only train a probe head cost
next to nothing beside the feature pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from w2s_ray.study.cost import gpu_memory_bytes, job_seconds, prompt_tokens, study_sizes
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.resources import job_resources, worker_plan
from w2s_ray.study.stages.weak_labels import BOOTSTRAP_FOLDS as FOLDS

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
    card = study.cards[job.model]
    tokens = study.max_length(job.dataset)
    weak_n, student_n, test_n = study_sizes(study)
    forward = 2.0 * card.params * tokens
    train = 6.0 * card.params * tokens
    finetune = study.spec.mode == "finetune"
    epochs = study.train_config(job.model, job.seed or 0, None).epochs
    if job.stage == "features":
        return forward * (weak_n + student_n + test_n)
    if job.stage in ("ground_truth", "student"):
        n = weak_n if job.stage == "ground_truth" else student_n
        return (train * n * epochs + forward * test_n) if finetune else 0.0
    if job.stage == "generative":
        return train * (weak_n + student_n) * study.spec.generative.epochs
    if job.stage == "bootstrap":  # one model per fold, each on the other folds' share
        fold_n = student_n * (FOLDS - 1) // FOLDS
        # each fold model labels its own fold and the whole test set
        flops = FOLDS * (train * fold_n * epochs + forward * test_n) + forward * student_n
        return flops if finetune else 0.0
    if job.stage == "label":
        return forward * (student_n + test_n) if finetune else 0.0
    if job.stage == "baseline":
        n = min(test_n, study.spec.baselines.n_test or test_n)
        return 2.0 * card.params * prompt_tokens(study, job) * n
    return 0.0


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

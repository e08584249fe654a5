"""What a study will cost before it runs: jobs, resource requests and device-hours.

FLOPs follow the usual transformer rule: 2·N per token forward, 6·N per token for a
training step. Sizes are upper bounds (every text at `max_length` tokens, the spec's
`n_train`/`n_test` caps), so the estimate errs high; jobs that only train a probe head
cost next to nothing beside the feature pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.resources import job_resources, worker_plan
from w2s_ray.study.stages.weak_labels import BOOTSTRAP_FOLDS as FOLDS

DEFAULT_TFLOPS = 100.0  # one current datacenter GPU at ~35% utilisation in bf16
UNCAPPED_TRAIN = 20_000  # assumed pool size when a study sets no n_train cap
UNCAPPED_TEST = 5_000
PLANNING_CLUSTER = {"CPU": 1e9, "GPU": 1e9, "memory": 1e18}  # show the cards' own requests


@dataclass(frozen=True)
class JobCost:
    flops: float
    resources: dict[str, float]


def _sizes(study: Study) -> tuple[int, int, int]:
    """(weak-train, student-train, test) example counts, at most."""
    data = study.spec.data
    pool = data.n_train or UNCAPPED_TRAIN
    return pool // 2, pool - pool // 2, data.n_test or UNCAPPED_TEST


def job_cost(job: Job, study: Study, gpu_cluster: bool = True) -> JobCost:
    card = study.cards[job.model]
    tokens = study.max_length(job.dataset)
    weak_n, student_n, test_n = _sizes(study)
    forward = 2.0 * card.params * tokens
    train = 6.0 * card.params * tokens
    finetune = study.spec.mode == "finetune"
    epochs = study.train_config(job.model, job.seed or 0, None).epochs
    if job.stage == "features":
        flops = forward * (weak_n + student_n + test_n)
    elif job.stage in ("ground_truth", "student"):
        n = weak_n if job.stage == "ground_truth" else student_n
        flops = (train * n * epochs + forward * test_n) if finetune else 0.0
    elif job.stage == "generative":
        flops = train * (weak_n + student_n) * study.spec.generative.epochs
    elif job.stage == "bootstrap":  # one model per fold, each on the other folds' share
        fold_n = student_n * (FOLDS - 1) // FOLDS
        # each fold model labels its own fold and the whole test set
        flops = FOLDS * (train * fold_n * epochs + forward * test_n) + forward * student_n
        flops = flops if finetune else 0.0
    elif job.stage == "label":
        flops = forward * (student_n + test_n) if finetune else 0.0
    elif job.stage == "baseline":
        base = study.spec.baselines
        shots = job.key.get("k", 0)
        prompt = min(base.max_prompt_tokens, (shots + 1) * (tokens + 8) + 32)
        flops = 2.0 * card.params * prompt * min(test_n, base.n_test or test_n)
    else:
        flops = 0.0
    cluster = PLANNING_CLUSTER if gpu_cluster else {**PLANNING_CLUSTER, "GPU": 0.0}
    workers = worker_plan(job, study, cluster)
    if workers is None:
        return JobCost(flops, job_resources(job, study, cluster))
    total = {k: v * workers.workers for k, v in workers.per_worker.items()}
    return JobCost(flops, {**total, "workers": float(workers.workers)})


def device_hours(flops: float, tflops: float = DEFAULT_TFLOPS) -> float:
    return flops / (tflops * 1e12) / 3600.0


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

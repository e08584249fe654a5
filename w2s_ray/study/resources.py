"""Per-job resource requests, from the model card and what the cluster has."""

from __future__ import annotations

from dataclasses import dataclass

from w2s_ray.models import devices_for
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study

GIB = 1024**3
TRAINING_STAGES = ("generative", "ground_truth", "bootstrap", "student")
INFERENCE_STAGES = ("features", "baseline")  # a backbone forward in any mode
COORDINATOR_CPU = 0.01
COORDINATOR_SHARE = 0.1  # of a CPU-only cluster: room for ten coordinators per CPU


@dataclass(frozen=True)
class WorkerPlan:
    """A fine-tune spread over Ray Train workers, each with these resources."""

    workers: int
    use_gpu: bool
    per_worker: dict[str, float]


def inference_gpus(params: int) -> int:
    """GPUs for bf16 weights plus a third again for the KV cache."""
    return devices_for(params * 2 * 4 / 3)


def worker_plan(job: Job, study: Study, cluster: dict[str, float]) -> WorkerPlan | None:
    """Ray Train workers for a fine-tune too big for one device (or asked for in the spec);
    None when the job runs in its trial's own process."""
    if job.stage not in TRAINING_STAGES or study.spec.mode != "finetune":
        return None
    if job.stage == "generative" or job.dataset in study.answer_tasks:
        return None  # language-model fine-tuning runs in its trial's own process
    card = study.cards[job.model]
    gpus = cluster.get("GPU", 0) >= 1 and card.resources.gpus > 0
    workers = study.spec.train.workers or (card.resources.gpus if gpus else 1)
    if workers <= 1:
        return None
    per_worker = {"CPU": max(1.0, card.resources.cpus / workers)}
    if gpus:
        per_worker["GPU"] = 1.0
    else:
        # Leave a tenth of the CPUs to the coordinating trials: if they took what a worker
        # group needs, no group could start and every trial would wait for ever.
        spare = max(0.1, cluster.get("CPU", 1.0) * (1 - COORDINATOR_SHARE))
        per_worker["CPU"] = round(min(per_worker["CPU"], spare / workers), 3)
    return WorkerPlan(workers, gpus, per_worker)


def job_resources(job: Job, study: Study, cluster: dict[str, float]) -> dict[str, float]:
    """CPU/GPU/memory one trial asks for; capped so every trial fits on the cluster.

    Head-only jobs (probe mode) need one CPU; backbone forward or backward passes need what
    the model's card says. Without GPUs on the cluster, GPU requests become CPU work. A job
    run by Ray Train workers reserves only a sliver of CPU for its coordinating trial
    (Ray rejects an empty bundle); the workers ask for their own.
    """
    if worker_plan(job, study, cluster) is not None:
        return {"CPU": COORDINATOR_CPU}
    card = study.cards[job.model]
    uses_backbone = job.stage in INFERENCE_STAGES or study.spec.mode == "finetune"
    if not uses_backbone:
        return {"CPU": 1.0}
    cpus = min(float(card.resources.cpus), max(1.0, cluster.get("CPU", 1.0)))
    request = {"CPU": cpus, "memory": card.resources.memory_gb * GIB}
    if cluster.get("GPU", 0) >= 1 and card.resources.gpus > 0:
        # a prompted model is sharded over the GPUs its bf16 weights need (tensor parallel)
        gpus = inference_gpus(card.params) if job.stage == "baseline" else 1
        request["GPU"] = float(min(gpus, cluster["GPU"]))
    request["memory"] = min(request["memory"], 0.8 * cluster.get("memory", request["memory"]))
    return request

"""Per-job resource requests, from the model card and what the cluster has."""

from __future__ import annotations

import math
from dataclasses import dataclass

from w2s_ray.models import devices_for
from w2s_ray.study.cost import gpu_memory_bytes, work_of
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study

GIB = 1024**3
GPU_GRID = 8  # shares of a GPU are multiples of 1/8
# What a job is given beyond its estimate: the fit's worst miss (qwen2.5-0.5b, 23% under
# its measured peak) and the CUDA context and allocator cache, which its peak leaves out.
MEMORY_MARGIN = 1.3
CONTEXT_BYTES = 1.0 * GIB
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
    if not work_of(job, study).trains_classifier:
        return None  # inference, a probe head, or a language model (one process)
    card = study.cards[job.model]
    gpus = cluster.get("GPU", 0) >= 1 and card.resources.gpus > 0
    # a card's GPUs are what a full fine-tune needs; a LoRA one fits on one (DDP would only
    # replicate it), so it uses more workers only when the spec asks for them
    wanted = card.resources.gpus if gpus and study.lora is None else 1
    workers = study.spec.train.workers or wanted
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


def shares_a_gpu(job: Job, study: Study) -> bool:
    """Whether `job` may run beside others on one GPU. Language-model fine-tunes hold
    logits over the whole vocabulary, which the memory fit leaves out; vLLM takes 90% of a
    device whatever the model, and the `auto` backend gives it every inference job whose
    model it supports, where it is installed."""
    work = work_of(job, study)
    vllm = work.inference_only and study.spec.inference.backend != "transformers"
    return not (work.trains_language_model or vllm)


def gpu_share(job: Job, study: Study) -> float:
    """The part of one GPU `job` asks for: its estimated memory with a margin, rounded up
    to eighths, at least 1/jobs_per_gpu (small steps are launch-bound: more than a few on
    one device fight over launches), at most the whole device."""
    settings = study.spec.resources
    if settings.jobs_per_gpu <= 1 or not shares_a_gpu(job, study):
        return 1.0
    need = MEMORY_MARGIN * gpu_memory_bytes(job, study) + CONTEXT_BYTES
    share = math.ceil(GPU_GRID * need / (settings.gpu_memory_gb * GIB)) / GPU_GRID
    return min(1.0, max(share, 1.0 / settings.jobs_per_gpu))


def job_resources(job: Job, study: Study, cluster: dict[str, float]) -> dict[str, float]:
    """CPU/GPU/memory one trial asks for; capped so every trial fits on the cluster.

    Head-only jobs (probe mode) need one CPU; backbone forward or backward passes need what
    the model's card says. Without GPUs on the cluster, GPU requests become CPU work. A job
    on one GPU asks for its share of it (`gpu_share`), and the same share of the card's
    CPUs (at least one). A job run by Ray Train workers reserves only a sliver of CPU for
    its coordinating trial (Ray rejects an empty bundle); the workers ask for their own.
    """
    if worker_plan(job, study, cluster) is not None:
        return {"CPU": COORDINATOR_CPU}
    card = study.cards[job.model]
    work = work_of(job, study)
    if not work.passes:  # probe heads on cached features
        return {"CPU": 1.0}
    cpus = min(float(card.resources.cpus), max(1.0, cluster.get("CPU", 1.0)))
    request = {"CPU": cpus, "memory": card.resources.memory_gb * GIB}
    if cluster.get("GPU", 0) >= 1 and card.resources.gpus > 0:
        # a prompted model is sharded over the GPUs its bf16 weights need (tensor parallel)
        gpus = inference_gpus(card.params) if work.prompts else 1
        request["GPU"] = float(min(gpus, cluster["GPU"]))
        if request["GPU"] == 1:
            request["GPU"] = gpu_share(job, study)
            request["CPU"] = float(max(1, math.ceil(cpus * request["GPU"])))
    request["memory"] = min(request["memory"], 0.8 * cluster.get("memory", request["memory"]))
    return request

"""Per-job resource requests, from the model card and what the cluster has."""

from __future__ import annotations

from w2s_ray.study.plan import Job, Study

GIB = 1024**3


def job_resources(job: Job, study: Study, cluster: dict[str, float]) -> dict[str, float]:
    """CPU/GPU/memory one trial asks for; capped so every trial fits on the cluster.

    Head-only jobs (probe mode) need one CPU; backbone forward or backward passes need what
    the model's card says. Without GPUs on the cluster, GPU requests become CPU work.
    """
    card = study.cards[job.model]
    uses_backbone = job.stage == "features" or study.spec.mode == "finetune"
    if not uses_backbone:
        return {"CPU": 1.0}
    cpus = min(float(card.resources.cpus), max(1.0, cluster.get("CPU", 1.0)))
    request = {"CPU": cpus, "memory": card.resources.memory_gb * GIB}
    if cluster.get("GPU", 0) >= 1 and card.resources.gpus > 0:
        # One device per trial for now; multi-device students arrive with Ray Train (issue 3).
        request["GPU"] = 1.0
    request["memory"] = min(request["memory"], 0.8 * cluster.get("memory", request["memory"]))
    return request

"""A study's jobs as the scheduler sees them: dependencies, resources, estimated time, and
which short jobs may share a task."""

from __future__ import annotations

from w2s_ray.study.cost import job_seconds, work_of
from w2s_ray.study.graph import Job
from w2s_ray.study.job_task import JobPayload
from w2s_ray.study.resolve import Study
from w2s_ray.study.resources import job_resources, worker_plan
from w2s_ray.study.scheduler import Node


def schedule(study: Study, jobs: list[Job], cluster: dict[str, float]) -> list[Node]:
    gpus = cluster.get("GPU", 0.0) >= 1
    nodes = []
    for job in jobs:
        resources = job_resources(job, study, cluster)
        workers = worker_plan(job, study, cluster)
        # probe heads of one dataset run several to a task: its splits and features load once
        batch = job.dataset if not work_of(job, study).passes else None
        nodes.append(
            Node(
                key=job.job_id,
                deps=job.deps,
                resources=resources,
                seconds=job_seconds(job, study, gpus, workers.workers if workers else 1),
                batch=batch,
                payload=JobPayload(job, workers),
            )
        )
    return nodes

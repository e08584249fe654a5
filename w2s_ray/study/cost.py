"""How long a job will take: orders the scheduler's queue and sizes its batches.

Throughput is calibrated on the tables in docs/benchmarks.md rather than FLOPs at a
nominal rate: below about 0.5B parameters a GPU step is bound by kernel launches.
"""

from __future__ import annotations

from w2s_ray.study.estimate import job_cost
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study

HEAD_SECONDS = 0.5  # a probe head or a label lookup on cached features (measured on CPU)
CPU_FLOPS = 0.1e12  # fp32 matmul rate of one of the build machine's cores pair
GPU_FLOPS = 50e12  # what the small ladders reach on an H100 (launch-bound, see benchmarks)


def job_seconds(job: Job, study: Study, gpus: bool) -> float:
    """Estimated wall seconds of `job` on one device of the cluster."""
    flops = job_cost(job, study, gpu_cluster=gpus).flops
    if flops <= 0:
        return HEAD_SECONDS
    return HEAD_SECONDS + flops / (GPU_FLOPS if gpus else CPU_FLOPS)

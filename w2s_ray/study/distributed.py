"""Fine-tunes spread over several workers: a Ray Train TorchTrainer inside the job's trial.

Ray 2.60 (Train V2) no longer runs a TorchTrainer as a Tune trainable, so the trial starts
one and waits for it. The run is named after the job, so a restarted trial finds the same
run; the training state itself resumes from the job's checkpoint file like any fine-tune.
"""

from __future__ import annotations

from typing import Any

from w2s_ray.study.execute import run_job
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.resources import WorkerPlan
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import Parallel
from w2s_ray.train.state import ShardedState, shard_model

WORKER_FAILURES = 2  # a lost worker restarts the group this often before the trial fails


def _worker_loop(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch
    import torch

    context = ray.train.get_context()
    cpus = config["cpus_per_worker"]
    torch.set_num_threads(max(1, int(cpus)))
    rank, world = context.get_world_rank(), context.get_world_size()
    if config["strategy"] == "fsdp":
        # Ray's own FSDP wrapper is GPU-only; FSDP2 runs on gloo too, so CPU tests cover it
        device = ray.train.torch.get_device()
        if device.type == "cuda":
            torch.cuda.set_device(device)
        parallel = Parallel(rank, world, lambda m: shard_model(m, device), ShardedState())
    else:

        def ddp(model: torch.nn.Module) -> torch.nn.Module:
            # encoders carry weights the classifier never uses (BERT's pooler): DDP must know
            return ray.train.torch.prepare_model(
                model, parallel_strategy_kwargs={"find_unused_parameters": True}
            )

        parallel = Parallel(rank, world, ddp)
    run_job(config["job"], config["study"], StudyStore(config["study_dir"]), parallel)


def run_job_on_workers(job: Job, study: Study, store: StudyStore, plan: WorkerPlan) -> None:
    """Run one fine-tune on `plan.workers` Ray Train workers, with DDP or FSDP."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "job": job,
            "study": study,
            "study_dir": store.location,
            "strategy": study.spec.train.strategy,
            "cpus_per_worker": plan.per_worker["CPU"],
        },
        scaling_config=ScalingConfig(
            num_workers=plan.workers,
            use_gpu=plan.use_gpu,
            resources_per_worker=plan.per_worker,
        ),
        run_config=RunConfig(
            name=f"train-{job.job_id}",
            storage_path=store.uri("train"),
            failure_config=FailureConfig(max_failures=WORKER_FAILURES),
        ),
    )
    trainer.fit()

"""A fine-tune split over 2 Ray Train workers (gloo DDP or FSDP on CPU) matches one worker."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from w2s_ray.spec import parse_spec
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.runner import run_study

pytestmark = pytest.mark.slow


def _spec(
    models: dict[str, Path], dataset: Path, workers: int | None, strategy: str = "ddp"
) -> dict:
    return {
        "name": f"tiny-{strategy}-{workers}",
        "datasets": [{"name": "toy", "path": str(dataset)}],
        "models": [{"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in models.items()],
        "mode": "finetune",
        "methods": ["logconf"],  # its whole-batch threshold must span the ranks
        "data": {"n_train": 128, "n_test": 60},
        "train": {
            "epochs": 2,
            "lr": 1e-3,
            "batch_size": 16,
            "max_length": 16,
            "workers": workers,
            "strategy": strategy,
        },
    }


def test_two_gloo_workers_match_one_worker_with_ddp_and_fsdp(
    ray_session, tiny_models_no_dropout, toy_dataset, tmp_path
):
    quiet = Console(file=io.StringIO())
    single = parse_spec(_spec(tiny_models_no_dropout, toy_dataset, None))
    one = run_study(single, tmp_path / "one", console=quiet)
    assert one.failures == {}
    assert not (tmp_path / "one" / "train").exists()
    for strategy in ("ddp", "fsdp"):
        double = parse_spec(_spec(tiny_models_no_dropout, toy_dataset, 2, strategy))
        two = run_study(double, tmp_path / strategy, console=quiet)
        assert two.failures == {}, strategy
        # the Ray Train path really ran: its runs are named after the jobs
        trained = sorted(p.name for p in (tmp_path / strategy / "train").iterdir())
        jobs = plan_jobs(resolve(double))
        expected = [f"train-{j.job_id}" for s in ("ground_truth", "student") for j in jobs[s]]
        assert trained == sorted(expected)

        # same job ids (workers do not change the numbers), so the weights can be compared
        for job in jobs["ground_truth"] + jobs["student"]:
            a = load_file(tmp_path / "one" / "jobs" / job.job_id / "model.safetensors")
            b = load_file(tmp_path / strategy / "jobs" / job.job_id / "model.safetensors")
            assert a.keys() == b.keys()
            for name in a:
                torch.testing.assert_close(b[name], a[name], atol=2e-4, rtol=1e-3)
        metrics = ["job_id", "test_accuracy"]
        left = one.results.select(metrics).sort("job_id")
        right = two.results.select(metrics).sort("job_id")
        assert left["job_id"].equals(right["job_id"])
        diff = (left["test_accuracy"] - right["test_accuracy"]).abs().max()
        assert diff <= 1 / 60, (strategy, diff)  # at most one test example flips
        assert isinstance(two.results, pl.DataFrame)

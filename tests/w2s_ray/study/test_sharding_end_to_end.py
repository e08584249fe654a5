"""Sharded inference through real Ray and tiny real models: the merged features, labels and
answers are what one job computes, shards are no results, and resuming redoes no shard."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
import torch
from answer_task import answer_file, answer_spec
from rich.console import Console

from w2s_ray.spec import StudySpec, parse_spec
from w2s_ray.study import artifacts
from w2s_ray.study.execute import run_job
from w2s_ray.study.graph import Job
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.runner import run_study
from w2s_ray.study.status import read_status
from w2s_ray.study.store import RESULT_COLUMNS, StudyStore

pytestmark = pytest.mark.slow

SHARD_ROWS = 15  # 40 pool + 20 test rows: 4 feature shards; 20 + 20 labeled rows: 3
# Length-sorted batches differ between a slice and the whole list, so padding and matmul
# shapes do: float rounding may differ in the last bits, never more.
TOLERANCE = 1e-6


def _spec(tiny_models: dict[str, Path], toy_dataset: Path, mode: str, shard_rows: int) -> StudySpec:
    return parse_spec(
        {
            "name": f"shards-{mode}",
            "datasets": [{"name": "toy", "path": str(toy_dataset)}],
            "models": [
                {"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in tiny_models.items()
            ],
            "mode": mode,
            "methods": ["xent"],
            "data": {"n_train": 40, "n_test": 20},
            "train": {
                "epochs": 10 if mode == "probe" else 2,
                "lr": 1e-2 if mode == "probe" else 1e-3,
                "batch_size": 8,
                "max_length": 16,
            },
            "resources": {"shard_rows": shard_rows},
        }
    )


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _jobs(spec: StudySpec) -> list[Job]:
    return [job for jobs in plan_jobs(resolve(spec)).values() for job in jobs]


def _forget(jobs: list[Job]) -> None:
    """Drop the cached features and labels of `jobs`, so the next study computes them."""
    for job in jobs:
        artifacts.features_path(job.job_id).unlink(missing_ok=True)
        artifacts.labels_path(job.job_id).unlink(missing_ok=True)


def _stamp(study_dir: Path, job_id: str) -> tuple[int, bytes, bytes]:
    """A job's result.json (mtime and bytes) and started.json (its attempts)."""
    folder = study_dir / "jobs" / job_id
    result = folder / "result.json"
    return result.stat().st_mtime_ns, result.read_bytes(), (folder / "started.json").read_bytes()


def _same_results(a: pl.DataFrame, b: pl.DataFrame) -> None:
    columns = [c for c in RESULT_COLUMNS if c != "wall_seconds"]
    assert a.select(columns).equals(b.select(columns)), (a, b)


def _run_sharded_against_whole(tiny_models, toy_dataset, tmp_path, mode):
    """The whole study, then (every artifact forgotten) the sharded one: both outcomes."""
    whole = _spec(tiny_models, toy_dataset, mode, 8192)
    sharded = _spec(tiny_models, toy_dataset, mode, SHARD_ROWS)
    whole_jobs = _jobs(whole)
    assert not any(job.shards for job in whole_jobs)
    before = run_study(whole, tmp_path / "whole", console=_quiet())
    assert before.failures == {}
    reference = {
        job.job_id: (artifacts.load_features(job.job_id), artifacts.load_labels(job.job_id))
        for job in whole_jobs
    }
    _forget(whole_jobs)  # the sharded study must compute every row again, not read these
    after = run_study(sharded, tmp_path / "sharded", console=_quiet())
    assert after.failures == {}
    return before, after, reference


def _check_merged(jobs: list[Job], reference: dict, stage: str) -> list[Job]:
    """Each parent's merged artifact holds the whole job's rows, in order, to rounding."""
    parents = [job for job in jobs if job.shards]
    assert parents and all(job.stage == stage for job in parents)
    for parent in parents:
        features, labels = reference[parent.job_id]  # the parent kept the whole job's id
        if stage == "features":
            merged = artifacts.load_features(parent.job_id)
            assert merged is not None and features is not None
            assert list(merged[0]) == list(features[0])
            assert torch.allclose(merged[1], features[1], rtol=0, atol=TOLERANCE)
        else:
            soft = artifacts.load_labels(parent.job_id)
            assert soft is not None and labels is not None and list(soft) == list(labels)
            assert max(abs(soft[i] - labels[i]) for i in soft) <= TOLERANCE
    return parents


def _check_shards_are_no_results(study_dir: Path, outcome, jobs: list[Job]) -> None:
    shard_ids = {job.job_id for job in jobs if job.shard is not None}
    assert not shard_ids & set(outcome.results["job_id"].to_list())
    table = pl.read_parquet(study_dir / "results.parquet")
    assert not shard_ids & set(table["job_id"].to_list())
    for shard in shard_ids:  # a shard keeps bookkeeping only
        result = json.loads((study_dir / "jobs" / shard / "result.json").read_text())
        assert result["n_rows"] > 0 and "test_accuracy" not in result and result["parent"]
    plan = json.loads((study_dir / "plan.json").read_text())
    planned = {j["job_id"] for jobs in plan["stages"].values() for j in jobs if "shard" in j}
    assert planned == shard_ids
    rows = {s.stage: s.counts for s in read_status(study_dir).stages}
    stage = next(job.stage for job in jobs if job.shard is not None)
    assert rows[f"{stage} shards"]["done"] == len(shard_ids)
    assert rows[stage]["done"] == sum(job.stage == stage and not job.shard for job in jobs)


def _check_resume(spec: StudySpec, study_dir: Path, jobs: list[Job], parents: list[Job]) -> None:
    """Killed after the shards finished but before the merge, the study reruns no shard;
    a done parent never runs its shards, even with their files gone."""
    shard_ids = [s for parent in parents for s in parent.shards]
    stamps = {s: _stamp(study_dir, s) for s in shard_ids}
    merged = {p.job_id: _content(p.stage, p.job_id) for p in parents}
    first = pl.read_parquet(study_dir / "results.parquet")
    for parent in parents:  # as if the driver died before the parents merged
        (study_dir / "jobs" / parent.job_id / "result.json").unlink()
        _path(parent.stage, parent.job_id).unlink()
    again = run_study(spec, study_dir, console=_quiet())
    assert again.failures == {}
    assert {s: _stamp(study_dir, s) for s in shard_ids} == stamps
    assert {p.job_id: _content(p.stage, p.job_id) for p in parents} == merged
    _same_results(again.results, first)
    for shard in shard_ids:  # a done parent never needs them again
        for name in ("result.json", "started.json"):
            (study_dir / "jobs" / shard / name).unlink()
        _path(parents[0].stage, shard).unlink()
    third = run_study(spec, study_dir, console=_quiet())
    assert third.failures == {} and third.report_error is None
    assert "— finished:" in (study_dir / "report.md").read_text()  # no shard is "missing"
    assert not any((study_dir / "jobs" / s / "started.json").exists() for s in shard_ids)
    _same_results(third.results, first)


def _path(stage: str, job_id: str) -> Path:
    return (artifacts.features_path if stage == "features" else artifacts.labels_path)(job_id)


def _content(stage: str, job_id: str) -> tuple[object, ...]:
    """What a cached artifact holds: a labels file's bytes; a features file's ids, tensor
    bytes and backend (safetensors writes its metadata keys in no fixed order)."""
    path = _path(stage, job_id)
    if stage != "features":
        return (path.read_bytes(),)
    loaded = artifacts.load_features(job_id)
    assert loaded is not None
    rows, features = loaded
    return list(rows), features.numpy().tobytes(), artifacts.made_by(path)


def _check_an_old_study_resumes_without_work(spec: StudySpec, study_dir: Path) -> None:
    """A study that finished unsharded, resumed under shards: nothing to run."""
    stamps = {p.name: p.read_bytes() for p in study_dir.glob("jobs/*/result.json")}
    outcome = run_study(spec, study_dir, console=_quiet())
    assert outcome.failures == {}
    assert {p.name: p.read_bytes() for p in study_dir.glob("jobs/*/result.json")} == stamps
    shard_ids = {job.job_id for job in _jobs(spec) if job.shard is not None}
    assert shard_ids and not any((study_dir / "jobs" / s).exists() for s in shard_ids)


@pytest.mark.parametrize(
    ("mode", "stage", "shards"), [("finetune", "label", [3]), ("probe", "features", [4, 4])]
)
def test_sharded_inference_equals_one_jobs_and_resume_redoes_no_shard(
    ray_session, tiny_models, toy_dataset, tmp_path, mode, stage, shards
):
    """Fine-tune mode shards the labels, probe mode the features."""
    before, after, reference = _run_sharded_against_whole(tiny_models, toy_dataset, tmp_path, mode)
    sharded = _spec(tiny_models, toy_dataset, mode, SHARD_ROWS)
    jobs = _jobs(sharded)
    parents = _check_merged(jobs, reference, stage)
    assert [len(p.shards) for p in parents] == shards
    _same_results(after.results, before.results)
    _check_shards_are_no_results(tmp_path / "sharded", after, jobs)
    _check_resume(sharded, tmp_path / "sharded", jobs, parents)
    _check_an_old_study_resumes_without_work(sharded, tmp_path / "whole")


def test_sharded_weak_answers_equal_one_jobs(tiny_decoders, tmp_path, w2s_cache):
    """An answer task (tests/w2s_ray/answer_task.py's), in process: the weak supervisor's
    answers written by three shards and merged are the answers one job writes."""
    data = answer_spec(tiny_decoders, answer_file(tmp_path / "a.jsonl"), methods=["xent"])
    whole = resolve(parse_spec(data))
    sharded = resolve(parse_spec({**data, "resources": {"shard_rows": 30}}))
    stages = plan_jobs(sharded)
    (parent,) = [job for job in stages["label"] if job.shards]
    assert len(parent.shards) == 3  # 40 student-train + 40 test rows at most
    store = StudyStore(tmp_path / "study")
    supervisor = next(j for j in stages["ground_truth"] if j.job_id == parent.supervisor)
    run_job(supervisor, sharded, store)
    for job in stages["label"]:  # the shards, then their parent's merge
        run_job(job, sharded, store)
    merged = artifacts.load_answers(parent.job_id)
    merged_result = store.read_result(parent.job_id)
    assert merged is not None and merged_result is not None
    for shard in parent.shards:
        assert "test_accuracy" not in (store.read_result(shard) or {"test_accuracy": 0})
    (label,) = plan_jobs(whole)["label"]
    assert label.job_id == parent.job_id and not label.shards
    artifacts.answers_path(label.job_id).unlink()
    result = run_job(label, whole, store)  # one job over every row
    assert artifacts.load_answers(label.job_id) == merged  # greedy answers: the same strings
    assert result is not None and result["test_accuracy"] == merged_result["test_accuracy"]
    assert merged_result["backend"] == result["backend"] == "transformers"

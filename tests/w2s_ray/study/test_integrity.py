"""Damaged results and damaged inputs of unfinished jobs send finished jobs back to run."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import torch
from safetensors.torch import save

from w2s_ray.spec import parse_spec
from w2s_ray.study import artifacts
from w2s_ray.study.integrity import safetensors_intact, send_back_broken_jobs
from w2s_ray.study.plan import Job, plan_jobs, resolve
from w2s_ray.study.store import StudyStore


def test_a_truncated_or_overwritten_safetensors_file_is_caught_without_reading_tensors():
    data = save({"a": torch.ones(64), "b": torch.zeros(3, 3)})
    assert safetensors_intact(io.BytesIO(data), len(data))
    for broken in (data[:-1], data[:20], b"garbage bytes here", data + b"x"):
        assert not safetensors_intact(io.BytesIO(broken), len(broken))


@pytest.fixture
def finished_study(tiny_models, toy_dataset, tmp_path, monkeypatch):
    """A finetune study whose every job has a result and its outputs (written by hand)."""
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    spec = parse_spec(
        {
            "name": "whole",
            "datasets": [{"name": "toy", "path": str(toy_dataset)}],
            "models": [
                {"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in tiny_models.items()
            ],
            "mode": "finetune",
        }
    )
    study = resolve(spec)
    jobs = [job for stage_jobs in plan_jobs(study).values() for job in stage_jobs]
    store = StudyStore(tmp_path / "study")
    for job in jobs:
        store.write_result(job.job_id, {"stage": job.stage, "test_accuracy": 0.6})
        if job.stage == "ground_truth":
            artifacts.save_weights(store, store.job_file(job.job_id, "model.safetensors"),
                                   {"w": torch.ones(8)})  # fmt: skip
        if job.stage == "label":
            artifacts.save_labels(
                job.job_id, ["x", "y"], torch.tensor([[0.3, 0.7], [0.9, 0.1]]), "transformers"
            )
    return study, jobs, store


def _by_stage(jobs: list[Job], stage: str) -> list[Job]:
    return [job for job in jobs if job.stage == stage]


def _first_chain(jobs: list[Job]) -> tuple[Job, Job, Job]:
    """A student, the label job it learns from, and that labeler's weak supervisor."""
    student = _by_stage(jobs, "student")[0]
    label = next(job for job in jobs if job.job_id in student.deps)
    return student, label, next(job for job in jobs if job.job_id == label.deps[0])


def test_a_whole_finished_study_sends_nothing_back(finished_study):
    study, jobs, store = finished_study
    assert send_back_broken_jobs(jobs, study, store) == []
    assert all(store.is_done(job.job_id) for job in jobs)


def test_a_damaged_result_is_set_aside_and_its_job_runs_again(finished_study):
    study, jobs, store = finished_study
    student = _by_stage(jobs, "student")[0]
    path = Path(store.file_path(store.job_file(student.job_id, "result.json")))
    truncated = path.read_bytes()[:25]
    path.write_bytes(truncated)
    notes = send_back_broken_jobs(jobs, study, store)
    assert notes == [f"{student.title}: its result.json is damaged; running it again"]
    assert not store.is_done(student.job_id)
    assert path.with_name("result.json.damaged").read_bytes() == truncated  # kept to look at
    # its inputs are whole, so nothing upstream is redone
    assert all(store.is_done(job.job_id) for job in jobs if job is not student)


def test_damaged_labels_send_the_labeler_back_and_damaged_weights_its_supervisor(
    finished_study,
):
    study, jobs, store = finished_study
    student, label, supervisor = _first_chain(jobs)
    store.delete(store.job_file(student.job_id, "result.json"))  # the student must run
    artifacts.labels_path(label.job_id).write_bytes(b"PAR1 not really parquet")
    weights = Path(store.file_path(store.job_file(supervisor.job_id, "model.safetensors")))
    weights.write_bytes(weights.read_bytes()[:-4])

    notes = send_back_broken_jobs(jobs, study, store)
    assert [n.split(":")[0] for n in notes] == [label.title, supervisor.title]
    assert not store.is_done(label.job_id) and not store.is_done(supervisor.job_id)
    stale = store.read_bytes(store.job_file(label.job_id, "result.json.stale"))
    assert stale is not None and b'"test_accuracy": 0.6' in stale
    # the other seed's jobs, and labels nobody still needs, are left alone
    others = [j for j in jobs if j not in (student, label, supervisor)]
    assert all(store.is_done(job.job_id) for job in others)


def test_weights_on_a_remote_store_are_checked_too(finished_study):
    study, jobs, _ = finished_study
    store = StudyStore("mock://bucket/study", filesystem=pafs._MockFileSystem())
    for job in jobs:
        store.write_result(job.job_id, {"stage": job.stage})
    student, label, supervisor = _first_chain(jobs)
    store.delete(store.job_file(student.job_id, "result.json"))
    artifacts.labels_path(label.job_id).unlink()  # labels lost: they must be made again...
    # ...from weights this store never received: the weak supervisor runs again too
    notes = send_back_broken_jobs(jobs, study, store)
    assert [n.split(":")[0] for n in notes] == [label.title, supervisor.title]


def test_a_driver_that_cannot_see_the_cluster_cache_checks_only_the_study_files(
    finished_study,
):
    study, jobs, store = finished_study
    student, label, supervisor = _first_chain(jobs)
    store.delete(store.job_file(student.job_id, "result.json"))
    artifacts.labels_path(label.job_id).unlink()  # not in *this* machine's cache
    assert send_back_broken_jobs(jobs, study, store, sees_cache=False) == []
    store.delete(store.job_file(label.job_id, "result.json"))
    store.delete(store.job_file(supervisor.job_id, "model.safetensors"))  # study files: checked
    notes = send_back_broken_jobs(jobs, study, store, sees_cache=False)
    assert [n.split(":")[0] for n in notes] == [supervisor.title]

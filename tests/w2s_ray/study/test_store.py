"""The study store on a local disk and on a non-local pyarrow filesystem (as s3:// would be)."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest
import torch

from w2s_ray.study import artifacts
from w2s_ray.study.outcome import JobError
from w2s_ray.study.store import StudyStore, results_frame


@pytest.fixture(params=["local", "remote"])
def store(request, tmp_path) -> StudyStore:
    if request.param == "local":
        return StudyStore(tmp_path / "study")
    return StudyStore("mock://bucket/study", filesystem=pafs._MockFileSystem())


def test_results_errors_and_attempts_round_trip(store):
    assert store.read_result("job-a") is None
    store.mark_started("job-a")
    store.write_error("job-a", JobError("crash", "boom", "Traceback ...", "RuntimeError"))
    assert store.read_error("job-a") == JobError("crash", "boom", "Traceback ...", "RuntimeError")
    assert store.read_error("job-a").line == "RuntimeError: boom"
    store.mark_started("job-a")
    assert store.read_json(store.job_file("job-a", "started.json"))["attempt"] == 2
    store.write_result("job-a", {"stage": "student", "test_accuracy": 0.75})
    assert store.read_result("job-a")["test_accuracy"] == 0.75
    assert store.read_error("job-a") is None  # the earlier try's error is gone
    assert store.subdirs("jobs") == ["job-a"]
    assert store.mtime(store.job_file("job-a", "result.json")) is not None


def test_a_result_naming_another_job_or_garbled_counts_as_not_done(store):
    store.write_bytes(store.job_file("job-b", "result.json"), b'{"job_id": "job-c"}')
    assert not store.is_done("job-b")
    store.write_bytes(store.job_file("job-b", "result.json"), b'{"job_id": "job-b", "x": ')
    assert not store.is_done("job-b")


def test_claims_are_exclusive(store):
    assert store.claim("faults-fired/0-0")
    assert not store.claim("faults-fired/0-0")


def test_checkpoints_and_weights_through_the_store(store):
    checkpointer = artifacts.FileCheckpointer(store, store.job_file("job-d", "checkpoint.pt"))
    assert checkpointer.load() is None
    checkpointer.save({"step": 7, "model": {"w": torch.ones(2)}})
    assert checkpointer.load()["step"] == 7 and checkpointer.resumed_from_step == 7
    store.write_bytes(store.job_file("job-d", "checkpoint.pt"), b"not a checkpoint")
    assert checkpointer.load() is None  # corrupted: the job starts over, it does not crash
    checkpointer.clear()
    assert not store.exists(store.job_file("job-d", "checkpoint.pt"))

    artifacts.save_weights(store, "w.safetensors", {"head.weight": torch.arange(4.0)})
    assert torch.equal(
        artifacts.load_weights(store, "w.safetensors")["head.weight"], torch.arange(4.0)
    )
    with pytest.raises(RuntimeError, match="missing"):
        artifacts.load_weights(store, "nope.safetensors")


def test_uris_keep_their_scheme_for_ray(store):
    if store.is_local:
        assert store.uri("tune") == f"{store.root}/tune"
    else:
        assert store.uri("tune") == "mock://bucket/study/tune"
        with pytest.raises(ValueError, match="not on this machine"):
            _ = store.root


def test_a_relative_local_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert StudyStore("runs/x").root == tmp_path / "runs" / "x"


def test_the_results_table_keeps_the_length_and_subset_columns():
    result = {
        "job_id": "b",
        "stage": "baseline",
        "max_length": 256,
        "n_cut": 7,
        "n_test": 100,
        "weak_accuracy_on_test": 0.61,
        "ceiling_accuracy_on_test": 0.83,
        "not_a_column": 1,
    }
    (row,) = results_frame([result, None]).iter_rows(named=True)
    assert (row["max_length"], row["n_cut"], row["n_test"]) == (256, 7, 100)
    assert (row["weak_accuracy_on_test"], row["ceiling_accuracy_on_test"]) == (0.61, 0.83)
    assert row["ceiling_auroc_on_test"] is None and "not_a_column" not in row

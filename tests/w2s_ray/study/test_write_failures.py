"""A study directory that cannot be written (read-only, full): one clear error, exit 2,
no half-written result, and a resume that finishes once the disk has room."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import yaml

from w2s_ray.study.store import StudyStore
from w2s_ray.study.writes import StudyWriteError, check_writable, write_failure


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A small RAM disk at `path`: a real read-only or full file system, even for root
    (whom file permissions do not stop)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "w2s-test", str(path)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no `mount` command here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "w2s_ray.cli", *args, "--num-cpus", "2"],
        env={**os.environ, "W2S_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _study_file(tmp_path: Path, models: dict[str, Path], dataset: Path) -> Path:
    spec = {
        "name": "disk",
        "datasets": [{"name": "toy", "path": str(dataset)}],
        "models": [{"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in models.items()],
        "seeds": [0],
        "mode": "finetune",
        "data": {"n_train": 120, "n_test": 60},
        "train": {"epochs": 2, "lr": 1e-2, "batch_size": 16, "max_length": 16},
    }
    path = tmp_path / "disk.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def test_a_file_in_the_way_of_the_study_directory_is_named_with_the_fix(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(StudyWriteError, match=r"a file is in the way.*--study-dir"):
        check_writable(StudyStore(tmp_path / "taken"))
    check_writable(StudyStore(tmp_path / "new" / "study"))  # passes, and leaves nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    (tmp_path / "old").mkdir()
    check_writable(StudyStore(tmp_path / "old"))
    assert list((tmp_path / "old").iterdir()) == []  # an existing folder stays, probe gone


def test_a_write_cut_short_leaves_the_old_result_and_no_temp_file(tmp_path):
    store = StudyStore(tmp_path)
    store.write_result("job-1", {"stage": "student", "test_accuracy": 0.5})
    before = store.read_bytes("jobs/job-1/result.json")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))  # files past 64 bytes: EFBIG
    try:
        with pytest.raises(OSError, match="File too large"):
            store.write_result("job-1", {"stage": "student", "note": "x" * 500})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert store.read_bytes("jobs/job-1/result.json") == before
    assert [p.name for p in (tmp_path / "jobs" / "job-1").iterdir()] == ["result.json"]


def test_a_read_only_study_directory_is_refused_before_any_compute(
    tiny_models, toy_dataset, tmp_path
):
    study = _study_file(tmp_path, tiny_models, toy_dataset)
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as mount:
        proc = _cli("run", str(study), "--study-dir", str(mount / "study"), cache=tmp_path / "c")
        assert proc.returncode == 2, proc.stderr[-3000:]
        line = _one_error_line(proc.stderr)
        assert "read-only" in line and "w2s-ray resume" in line
        assert list(mount.iterdir()) == []
    assert not (tmp_path / "c" / "features").exists()  # stopped before any job


@pytest.mark.slow
def test_a_disk_filling_up_mid_study_stops_cleanly_and_resume_finishes(
    tiny_models, toy_dataset, tmp_path
):
    study = _study_file(tmp_path, tiny_models, toy_dataset)
    cache = tmp_path / "cache"
    # room for the plan and the first jobs, not for every job's weights and Tune's state
    with _tmpfs(tmp_path / "disk", "size=250k") as disk:
        study_dir = disk / "study"
        proc = _cli("run", str(study), "--study-dir", str(study_dir), cache=cache)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
        line = _one_error_line(proc.stderr)
        assert "the disk is full" in line and f"w2s-ray resume {study_dir}" in line
        results = sorted(study_dir.glob("jobs/*/result.json"))
        plan = json.loads((study_dir / "plan.json").read_text())
        n_jobs = sum(len(jobs) for jobs in plan["stages"].values())
        assert 0 < len(results) < n_jobs, "the disk filled up neither too soon nor too late"
        kept = {p: p.read_bytes() for p in results}
        for path in kept:  # every result there is whole
            assert json.loads(path.read_text())["job_id"] == path.parent.name
        assert not list(study_dir.rglob(".*.tmp")), "a half-written file was left behind"

        _remount(disk, "size=64m")  # the user frees space
        resumed = _cli("resume", str(study_dir), cache=cache)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert len(list(study_dir.glob("jobs/*/result.json"))) == n_jobs
        assert {p: p.read_bytes() for p in kept} == kept  # finished jobs were not redone
        assert (study_dir / "pgr.parquet").is_file()


def test_the_message_points_at_the_disk_that_failed(tmp_path):
    store = StudyStore(tmp_path / "study")
    in_study = OSError(errno.ENOSPC, "No space left on device", str(store.root / "jobs/a/x"))
    assert f"make '{store.location}' writable" in str(write_failure(in_study, store))
    cache_file = tmp_path / "cache" / "labels" / "x.parquet"
    in_cache = OSError(errno.ENOSPC, "No space left on device", str(cache_file))
    message = str(write_failure(in_cache, store))
    assert f"cannot write '{cache_file}': the disk is full" in message
    assert f"make '{cache_file.parent}' writable" in message
    assert f"w2s-ray resume {store.location}" in message


def test_an_object_store_refusal_keeps_its_own_words():
    store = StudyStore("mock://bucket/study", filesystem=pafs._MockFileSystem())
    message = str(write_failure(OSError("AWS Error ACCESS_DENIED during PutObject"), store))
    assert "cannot write 'mock://bucket/study': AWS Error ACCESS_DENIED" in message
    assert "w2s-ray resume mock://bucket/study" in message

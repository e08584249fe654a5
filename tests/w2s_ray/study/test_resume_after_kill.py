"""SIGKILL the driver twice mid-study, resume, and get what an uninterrupted run gets."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
import yaml

pytestmark = pytest.mark.slow

METRICS = ["job_id", "stage", "test_accuracy", "test_auroc", "agreement_with_weak"]


def _study_file(tmp_path: Path, models: dict[str, Path], dataset: Path) -> Path:
    spec = {
        "name": "killed",
        "datasets": [{"name": "toy", "path": str(dataset)}],
        "models": [{"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in models.items()],
        "seeds": [0],  # one seed: two kills and a resume still cross every stage
        "mode": "finetune",
        "methods": ["xent"],
        "data": {"n_train": 160, "n_test": 60},
        "train": {"epochs": 20, "lr": 1e-3, "batch_size": 4, "max_length": 16},
    }
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _driver(args: list[str], cache: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "W2S_CACHE": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "w2s_ray.cli", *args, "--num-cpus", "2"],
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group, so the Ray it starts can be cleaned up
    )


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the driver ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill the driver never came"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    # what the driver started (its local Ray) goes down with it, as on a lost machine
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _snapshot(study_dir: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in study_dir.glob("jobs/*/result.json")}


def _checkpoints(study_dir: Path, stage: str) -> list[Path]:
    return list(study_dir.glob(f"jobs/{stage}-*/checkpoint.pt"))


def test_a_study_killed_twice_resumes_to_the_uninterrupted_results(
    tiny_models, toy_dataset, tmp_path
):
    study = _study_file(tmp_path, tiny_models, toy_dataset)
    log = tmp_path / "drivers.log"

    reference_dir = tmp_path / "reference"
    ref = _driver(["run", str(study), "--study-dir", str(reference_dir)], tmp_path / "c1", log)
    assert ref.wait(timeout=600) == 0, log.read_text()[-3000:]

    study_dir = tmp_path / "study"
    cache = tmp_path / "c2"
    # kill 1: while the first ground-truth fine-tunes are mid-training
    first = _driver(["run", str(study), "--study-dir", str(study_dir)], cache, log)
    _kill_when(first, lambda: bool(_checkpoints(study_dir, "ground_truth")))
    after_first = _snapshot(study_dir)

    # kill 2: after some jobs finished and a student is mid-training
    second = _driver(["resume", str(study_dir)], cache, log)
    _kill_when(second, lambda: bool(_checkpoints(study_dir, "student")))
    after_second = _snapshot(study_dir)
    assert len(after_second) > len(after_first)
    labels = {p: p.stat().st_mtime_ns for p in (cache / "labels").glob("*.parquet")}
    assert labels, "the weak labels were cached before the second kill"

    final = _driver(["resume", str(study_dir)], cache, log)
    assert final.wait(timeout=600) == 0, log.read_text()[-3000:]

    # finished jobs were never run again: their result files are byte-identical
    end = _snapshot(study_dir)
    for job_id, data in after_second.items():
        assert end[job_id] == data, job_id
    # cached weak labels were reused, not rewritten
    assert {p: p.stat().st_mtime_ns for p in labels} == labels
    # a fine-tune killed mid-training restarted from its checkpoint, not from step 0
    resumes = [p.read_text() for p in study_dir.glob("jobs/*/resumes.txt")]
    assert resumes and all(int(r.split()[-1]) > 0 for r in resumes)
    started = [json.loads(p.read_text()) for p in study_dir.glob("jobs/*/started.json")]
    assert max(s["attempt"] for s in started) >= 2

    # and the numbers are those of the uninterrupted run
    got = pl.read_parquet(study_dir / "results.parquet").select(METRICS).sort("job_id")
    want = pl.read_parquet(reference_dir / "results.parquet").select(METRICS).sort("job_id")
    assert got.equals(want)
    assert pl.read_parquet(study_dir / "pgr.parquet").equals(
        pl.read_parquet(reference_dir / "pgr.parquet")
    )
    # the Tuners of interrupted stages were restored, not replaced
    assert (study_dir / "tune" / "ground_truth").is_dir()
    assert not (study_dir / "tune" / "ground_truth-2").exists()

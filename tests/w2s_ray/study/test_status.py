"""`w2s-ray status` from files alone: running, interrupted, failed and retried jobs, ETA."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from w2s_ray.errors import UserError
from w2s_ray.study.outcome import JobError
from w2s_ray.study.status import read_status
from w2s_ray.study.store import StudyStore


def _plan(root: Path, seconds: list[float] | None = None, gpu: float | None = None) -> StudyStore:
    """Six student jobs; with `seconds`, the plan's estimate of each (as `run` records)."""
    store = StudyStore(root)
    jobs: list[dict[str, object]] = [
        {"job_id": f"student-{i}", "title": f"student {i}", "deps": [], "resources": {"CPU": 1.0}}
        for i in range(6)
    ]
    for i, job in enumerate(jobs):
        if seconds is not None:
            job["seconds"] = seconds[i]
        if gpu is not None:
            job["resources"] = {"CPU": 1.0, "GPU": gpu}
    store.write_plan({"study": "demo", "stages": {"student": jobs, "label": []}})
    return store


def _driver_record(
    heartbeat_age: float, finished: bool = False, started_ago: float = 100
) -> dict[str, object]:
    now = time.time()
    return {
        "pid": 1,
        "host": "h",
        "cluster": {"CPU": 2.0},
        "first_started_at": now - 1000,
        "started_at": now - started_ago,
        "heartbeat_at": now - heartbeat_age,
        "earlier_seconds": 50.0,
        "finished_at": now if finished else None,
    }


def _driver(
    store: StudyStore, heartbeat_age: float, finished: bool = False, started_ago: float = 100
) -> None:
    store.write_driver(_driver_record(heartbeat_age, finished, started_ago))


def _files(store: StudyStore) -> None:
    for i, wall in ((0, 10.0), (1, 30.0)):
        store.write_result(f"student-{i}", {"stage": "student", "wall_seconds": wall})
    store.mark_started("student-2")  # running (or interrupted)
    store.mark_started("student-3")
    store.write_error(
        "student-3", JobError("user", "loss became nan\n\nmore", "", "FloatingPointError")
    )
    store.write_error("student-4", JobError("crash", "crashed", "Traceback", "RuntimeError"))
    past = time.time() - 30
    os.utime(store.root / "jobs" / "student-4" / "error.json", (past, past))
    store.mark_started("student-4")  # retried after its error: running again


def test_a_running_study(tmp_path):
    store = _plan(tmp_path)
    _files(store)
    _driver(store, heartbeat_age=2)
    state = read_status(tmp_path)
    assert state.running and [s.stage for s in state.stages] == ["student"]
    stage = state.stages[0]
    assert stage.counts == {"done": 2, "running": 2, "failed": 1, "pending": 1}
    assert stage.errors == [("student 3", "FloatingPointError: loss became nan")]
    # a plan without estimates: 3 jobs left, 2 at a time on 2 CPUs, 20 s each on average
    assert stage.remaining_seconds == pytest.approx(2 * 20.0)
    assert state.elapsed_seconds == pytest.approx(150.0, abs=2)


def test_time_left_is_the_plans_estimates_scaled_by_what_finished_jobs_took(tmp_path):
    # jobs 0 and 1 finished in 10 s and 30 s against 5 s and 15 s planned: twice as slow
    store = _plan(tmp_path, seconds=[5.0, 15.0, 4.0, 8.0, 20.0, 12.0])
    _files(store)
    _driver(store, heartbeat_age=2)
    stage = read_status(tmp_path).stages[0]
    assert stage.ratio == pytest.approx(2.0)
    # left: 2 and 4 (running: 4 retried after its crash), 5 (pending); 3 failed, it is not
    # counted; two at a time on 2 CPUs
    assert stage.remaining_seconds == pytest.approx((4.0 + 20.0 + 12.0) / 2 * 2.0)


def test_time_left_before_any_job_finished_uses_the_estimates_and_gpu_shares(tmp_path):
    store = _plan(tmp_path, seconds=[60.0] * 6, gpu=0.25)
    store.write_driver({**_driver_record(heartbeat_age=1), "cluster": {"CPU": 16.0, "GPU": 1.0}})
    state = read_status(tmp_path)
    # six jobs of a minute each, four at a time on one GPU shared by quarters
    assert state.remaining_seconds == pytest.approx(6 * 60.0 / 4)


def test_a_crashed_study_shows_interrupted_jobs_as_pending(tmp_path):
    store = _plan(tmp_path)
    _files(store)
    _driver(store, heartbeat_age=600, started_ago=900)
    state = read_status(tmp_path)
    assert not state.running
    stage = state.stages[0]
    assert stage.counts == {"done": 2, "running": 0, "failed": 1, "pending": 3}
    assert stage.interrupted == 2
    # earlier drivers' 50 s plus this one's 300 s up to its last heartbeat
    assert state.elapsed_seconds == pytest.approx(350.0, abs=2)


def test_not_a_study_directory(tmp_path):
    with pytest.raises(UserError, match="not a study directory"):
        read_status(tmp_path)
    (tmp_path / "study.yaml").write_text("name: x\n")
    with pytest.raises(UserError, match="w2s-ray resume"):
        read_status(tmp_path)


def test_status_cli_prints_counts_and_errors(tmp_path, capsys):
    from typer.testing import CliRunner

    from w2s_ray.cli import app

    store = _plan(tmp_path)
    _files(store)
    _driver(store, heartbeat_age=0, finished=True)
    out = CliRunner().invoke(app, ["status", str(tmp_path)], terminal_width=200).output
    assert "its last run finished" in out
    assert "student 3: FloatingPointError: loss became nan" in out
    assert json.loads((tmp_path / "plan.json").read_text())["study"] == "demo"


def test_a_second_driver_is_refused_while_the_first_lives(tmp_path):
    from w2s_ray.study.runner import check_not_running

    store = _plan(tmp_path)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _driver(store, heartbeat_age=1)
        driver = store.read_driver()
        store.write_driver({**driver, "pid": alive.pid, "host": socket.gethostname()})
        with pytest.raises(UserError, match="being run right now"):
            check_not_running(store)
        store.write_driver({**driver, "pid": alive.pid, "host": "another-node"})
        with pytest.raises(UserError, match="another-node"):
            check_not_running(store)
    finally:
        alive.kill()
        alive.wait()
    # killed a moment ago: on this machine the dead pid means a resume may start at once
    store.write_driver({**driver, "pid": alive.pid, "host": socket.gethostname()})
    check_not_running(store)
    _driver(store, heartbeat_age=600)  # a stale heartbeat from another node
    check_not_running(store)

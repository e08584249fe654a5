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


def _plan(root: Path) -> StudyStore:
    store = StudyStore(root)
    jobs = [
        {"job_id": f"student-{i}", "title": f"student {i}", "deps": [], "resources": {"CPU": 1.0}}
        for i in range(6)
    ]
    store.write_plan({"study": "demo", "stages": {"student": jobs, "label": []}})
    return store


def _driver(
    store: StudyStore, heartbeat_age: float, finished: bool = False, started_ago: float = 100
) -> None:
    now = time.time()
    store.write_driver(
        {
            "pid": 1,
            "host": "h",
            "cluster": {"CPU": 2.0},
            "first_started_at": now - 1000,
            "started_at": now - started_ago,
            "heartbeat_at": now - heartbeat_age,
            "earlier_seconds": 50.0,
            "finished_at": now if finished else None,
        }
    )


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
    # 3 jobs left, 2 at a time on 2 CPUs, 20 s each on average
    assert stage.remaining_seconds == pytest.approx(2 * 20.0)
    assert state.elapsed_seconds == pytest.approx(150.0, abs=2)


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

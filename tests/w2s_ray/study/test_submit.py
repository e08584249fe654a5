"""`w2s-ray submit` against a real `ray start --head` on 127.0.0.1, then `status` on its dir."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

GCS_PORT, DASHBOARD_PORT = "6391", "8299"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ray_head():
    """A head of its own, stopped by killing its process group: `ray stop` would also stop
    every other Ray on the machine, the tests' own among them (and with it pytest)."""
    temp_dir = tempfile.mkdtemp(prefix="w2s-ray-", dir="/tmp")
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",  # jobs run `w2s-ray` from this venv
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep it on loopback
    }
    start = [
        str(Path(bin_dir) / "ray"), "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={GCS_PORT}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={DASHBOARD_PORT}", "--num-cpus=2",
        f"--temp-dir={temp_dir}",  # short: Ray's socket paths must fit in 107 bytes
        # the tests' own Ray holds the default agent port; a second agent there never starts
        f"--dashboard-agent-listen-port={_free_port()}",
    ]  # fmt: skip
    head = subprocess.Popen(
        start, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"http://127.0.0.1:{DASHBOARD_PORT}/api/version"):
            assert head.poll() is None, "ray start --head exited"
            assert time.monotonic() < deadline, "the head's dashboard never answered"
            time.sleep(1)
        yield env
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, sig)
            time.sleep(3)
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:  # 401 without a token: up, and asking for one
        return True
    except OSError:
        return False


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "w2s_ray.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_submit_runs_the_study_as_a_ray_job_and_status_reads_its_directory(
    ray_head, tiny_models, toy_dataset, tmp_path
):
    spec = {
        "name": "submitted",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in tiny_models.items()
        ],
        "data": {"n_train": 80, "n_test": 40},
        "train": {"epochs": 3, "max_length": 16},
    }
    study = tmp_path / "submitted.yaml"
    study.write_text(yaml.safe_dump(spec))
    study_dir = tmp_path / "on-cluster"
    address = f"http://127.0.0.1:{DASHBOARD_PORT}"
    env = {**ray_head, "W2S_CACHE": str(tmp_path / "cache")}

    sent = _cli("submit", str(study), "--address", address, "--study-dir", str(study_dir), env=env)
    assert sent.returncode == 0, sent.stderr
    job_id = next(w for w in sent.stdout.split() if w.startswith("w2s-submitted-"))
    assert f"ray job logs --follow {job_id}" in sent.stdout

    from ray.job_submission import JobStatus, JobSubmissionClient

    from w2s_ray.study.ray_session import send_cluster_token

    send_cluster_token()  # as the CLI does: the head wants this machine's token
    client = JobSubmissionClient(address)
    deadline = time.monotonic() + 400
    while not (state := client.get_job_status(job_id)).is_terminal():
        assert time.monotonic() < deadline, client.get_job_logs(job_id)[-3000:]
        time.sleep(2)
    assert state == JobStatus.SUCCEEDED, client.get_job_logs(job_id)[-3000:]

    assert (study_dir / "pgr.parquet").exists()
    assert json.loads((study_dir / "driver.json").read_text())["address"] == "auto"
    shown = _cli("status", str(study_dir), env=env)
    assert shown.returncode == 0, shown.stderr
    assert "its last run finished" in shown.stdout
    for line in shown.stdout.splitlines():
        if line.startswith("│ student"):
            assert line.split("│")[2].strip() == "1"  # one pair, one method, one seed: done

    unreachable = _cli("submit", str(study), "--address", "http://127.0.0.1:1", env=env)
    assert unreachable.returncode == 2 and "no Ray Jobs server answers" in unreachable.stderr

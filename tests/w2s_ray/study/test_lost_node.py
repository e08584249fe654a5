"""A worker node lost mid-study (a spot preemption) on a real two-node Ray cluster: the study
finishes on the node that is left, equal to an undisturbed run, no finished job runs again,
and the fine-tune that was training on the lost node goes on from its checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import psutil
import pytest
from checkpointing_study import checkpointing_study_file

pytestmark = pytest.mark.slow

METRICS = ["job_id", "stage", "test_accuracy", "test_auroc", "agreement_with_weak"]
DRIVER_TIMEOUT_S = 420  # a guard against a hang; a loaded 2-core machine needs minutes


class TwoNodes:
    """A head and a worker node on loopback, one CPU each (a job apiece): the test process
    never connects (its drivers are subprocesses), so a Ray that another test in this
    process starts, before or after, is not touched."""

    def __init__(self) -> None:
        from ray.cluster_utils import Cluster

        self.cluster = Cluster()
        self.worker = None  # the node that will be lost (ray._private.node.Node)
        self.lost: list[psutil.Process] = []  # what ran on it

    def start(self) -> None:
        from ray.experimental import internal_kv

        # Each node started here points this process's internal-KV client at its GCS: put
        # back what was there (the session Ray's, when an earlier test here started one)
        kv_client = internal_kv.internal_kv_get_gcs_client()
        loopback = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
        try:
            self.cluster.add_node(**loopback, include_dashboard=False)
            self.worker = self.cluster.add_node(**loopback)
            self.cluster.wait_for_nodes()
        finally:
            if kv_client is None:
                internal_kv._internal_kv_reset()
            else:
                internal_kv._initialize_internal_kv(kv_client)

    @property
    def address(self) -> str:
        return self.cluster.address

    def worker_pids(self) -> set[int]:
        """A node's workers are its raylet's children (all nodes share this host)."""
        return {p.pid for p in _descendants(_raylet_pid(self.worker))}

    def lose_worker(self) -> None:
        """The worker node goes as a preempted machine does: all its processes stop at once
        (frozen, so none writes another byte), then die. Its workers would otherwise train on
        for about 2 s after their raylet is killed, and a short job could even finish."""
        processes = _processes(self.worker)
        for proc in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.suspend()
        self.cluster.remove_node(self.worker, allow_graceful=False)
        for proc in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.lost = processes

    def stop(self) -> None:
        ours = [p for node in self.cluster.list_all_nodes() for p in _processes(node)]
        # not Cluster.shutdown(): it also drops this process's internal-KV client (see above)
        self.cluster.global_state.disconnect()
        for node in list(self.cluster.worker_nodes):
            self.cluster.remove_node(node, allow_graceful=False)
        if self.cluster.head_node is not None:
            self.cluster.remove_node(self.cluster.head_node)
        _reap(ours + self.lost)


def _processes(node) -> list[psutil.Process]:
    """A node's own processes (raylet, agents) and what they started (its workers)."""
    found = []
    for infos in node.all_processes.values():
        for info in infos:
            with contextlib.suppress(psutil.NoSuchProcess):
                found.append(psutil.Process(info.process.pid))
            found += _descendants(info.process.pid)
    return found


def _raylet_pid(node) -> int:
    from ray._private import ray_constants

    return node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid


def _descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).children(recursive=True)
    return []


def _started_in(ray_tmp: Path) -> list[psutil.Process]:
    """Every process whose command line names the cluster's private temp dir: also those of a
    node that failed to start (Cluster then keeps no record of them)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(ray_tmp) in arg for arg in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def _reap(processes: list[psutil.Process]) -> None:
    """Ray workers exit on their own once their raylet is gone; kill any that did not."""
    _, alive = psutil.wait_procs(processes, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            print(f"stray process after the cluster's shutdown: {proc.pid} {proc.cmdline()}")
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


@pytest.fixture
def two_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoNodes]:
    import ray
    from ray._private import ray_constants

    connected = ray.is_initialized()  # the session's Ray, if an earlier test started it
    # Short (unix socket paths), and private: a cluster writes its address to
    # $RAY_TMPDIR/ray/ray_current_cluster, where any `ray.init()` on this machine (the other
    # xdist worker's start_ray) would otherwise find it and try to join it.
    ray_tmp = Path(tempfile.mkdtemp(prefix="w2s-ln-", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    # The node processes read these when they start; ray may be imported here already, so
    # its loopback flag (a module constant, read at import) is patched too.
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    nodes = TwoNodes()
    try:
        nodes.start()
        yield nodes
    finally:
        try:
            nodes.stop()
        finally:
            _reap(_started_in(ray_tmp))
            shutil.rmtree(ray_tmp, ignore_errors=True)
    assert ray.is_initialized() == connected


def _driver(study: Path, study_dir: Path, address: str, cache: Path) -> subprocess.Popen:
    args = ["run", str(study), "--study-dir", str(study_dir), "--address", address]
    with (study_dir.parent / f"{study_dir.name}.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "w2s_ray.cli", *args],
            env={**os.environ, "W2S_CACHE": str(cache)},  # no features or labels shared
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait(proc: subprocess.Popen, study_dir: Path) -> None:
    try:
        code = proc.wait(timeout=DRIVER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    log = (study_dir.parent / f"{study_dir.name}.log").read_text()[-4000:]
    assert code == 0, f"the driver ended with {code}:\n{log}"


def _training_on(nodes: TwoNodes, study_dir: Path, proc: subprocess.Popen) -> tuple[str, int]:
    """A job training on the worker node, checkpointed, that started after some other job
    finished: the loss then has finished work to leave alone and a checkpoint to go on from."""
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        on_node = nodes.worker_pids()
        finishes = [mtime for _, mtime in _finished(study_dir).values()]
        for checkpoint in study_dir.glob("jobs/*/checkpoint.pt") if finishes else ():
            with contextlib.suppress(OSError, ValueError, KeyError):
                started = json.loads((checkpoint.parent / "started.json").read_text())
                if started["pid"] in on_node and started["started_at"] * 1e9 > min(finishes):
                    return checkpoint.parent.name, started["pid"]
        time.sleep(0.05)
    raise AssertionError(f"no job checkpointed on the worker node (driver exit {proc.poll()})")


def _finished(study_dir: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for path in study_dir.glob("jobs/*/result.json"):
        with contextlib.suppress(OSError):
            out[path.parent.name] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


def _tables(study_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    results = pl.read_parquet(study_dir / "results.parquet").select(METRICS).sort("job_id")
    return results, pl.read_parquet(study_dir / "pgr.parquet")


def test_a_study_survives_losing_a_worker_node_mid_training(
    two_nodes: TwoNodes, tiny_models, toy_dataset, tmp_path
):
    # two seeds: a second wave of fine-tunes starts on each node
    seeds = [0, 1]
    study = checkpointing_study_file(tmp_path, "lost-node", tiny_models, toy_dataset, seeds)
    reference, lost = tmp_path / "reference", tmp_path / "lost"
    _wait(_driver(study, reference, two_nodes.address, tmp_path / "cache-ref"), reference)

    proc = _driver(study, lost, two_nodes.address, tmp_path / "cache-lost")
    try:
        interrupted, lost_pid = _training_on(two_nodes, lost, proc)
        lost_at = time.time()
        two_nodes.lose_worker()
        kept = _finished(lost)
        _wait(proc, lost)
    finally:
        if proc.poll() is None:
            proc.kill()

    got, want = _tables(lost), _tables(reference)
    assert got[0].equals(want[0]), (got[0], want[0])
    assert got[1].equals(want[1])
    now = _finished(lost)  # no job finished before the loss ran again
    assert kept and [job for job, seen in kept.items() if now.get(job) != seen] == []
    job_dir = lost / "jobs" / interrupted
    started = json.loads((job_dir / "started.json").read_text())
    # Ray ran its task again, on the node that is left, from the job's checkpoint
    assert started["attempt"] == 2 and started["started_at"] > lost_at
    assert started["pid"] != lost_pid
    resumed = (job_dir / "resumes.txt").read_text().split()
    assert resumed[:3] == ["resumed", "from", "step"] and int(resumed[3]) > 0, resumed

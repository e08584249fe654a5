"""The dependency-driven scheduler on a real local Ray: order, no stage barriers, longest
chain first, batching of short jobs, retries of crashes and none of users' errors."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from w2s_ray.study.outcome import JobError
from w2s_ray.study.scheduler import Node, Scheduler, chain_lengths

ONE_SLOT = {"CPU": 1.0}  # the session's Ray has 2 CPUs
TWO_SLOTS = {"CPU": 2.0}  # a job taking the whole cluster: jobs run one at a time


def _probe_executor(log_dir: Path):
    """An executor that sleeps, logs when each job ran and in which process, and fails on
    request; defined here so that Ray ships it by value."""

    @dataclass(frozen=True)
    class Probe:
        log_dir: str

        def __call__(self, payloads: list[dict]) -> list[JobError | None]:
            out: list[JobError | None] = []
            for p in payloads:
                path = Path(self.log_dir) / p["key"]
                started = time.time()
                time.sleep(p.get("sleep", 0.0))
                tries = len(list(Path(self.log_dir).glob(f"{p['key']}.try*")))
                (Path(self.log_dir) / f"{p['key']}.try{tries}").touch()
                fail = p.get("fail")
                if (fail == "crash_once" and tries == 0) or fail == "crash_always":
                    out.append(JobError("crash", "boom", "Traceback", "RuntimeError"))
                    continue
                if fail == "die":  # the worker process goes, as on a lost node
                    os._exit(1)
                if fail in ("user", "write"):
                    out.append(JobError(fail, "bad input"))
                    continue
                record = {"start": started, "end": time.time(), "pid": os.getpid()}
                path.write_text(json.dumps(record))
                out.append(None)
            return out

    return Probe(str(log_dir))


def _node(key: str, deps=(), sleep=0.0, resources=ONE_SLOT, batch=None, fail=None, seconds=None):
    payload = {"key": key, "sleep": sleep, "fail": fail}
    est = sleep if seconds is None else seconds
    return Node(key, tuple(deps), resources, est, batch=batch, payload=payload)


def _ran(log_dir: Path, key: str) -> dict:
    return json.loads((log_dir / key).read_text())


def test_chain_lengths_follow_the_longest_path_to_the_end():
    nodes = [
        Node("a", (), {}, 1.0),
        Node("b", ("a",), {}, 5.0),
        Node("c", ("a",), {}, 2.0),
        Node("d", ("c",), {}, 1.0),
    ]
    assert chain_lengths(nodes) == {"a": 6.0, "b": 5.0, "c": 3.0, "d": 1.0}
    with pytest.raises(ValueError, match="cycle"):
        chain_lengths([Node("x", ("y",), {}, 1.0), Node("y", ("x",), {}, 1.0)])


def test_a_job_starts_when_its_inputs_exist_not_when_a_stage_ends(ray_session, tmp_path):
    # "stage 1" holds a slow job and a quick one; the quick one's dependant must not wait
    # for the slow job, as it did when each stage was a Tune run of its own
    nodes = [
        _node("slow", sleep=3.0),
        _node("quick", sleep=0.1),
        _node("after-quick", deps=["quick"], sleep=0.1),
        _node("after-slow", deps=["slow"], sleep=0.1),
    ]
    events: list[tuple[str, str]] = []
    scheduler = Scheduler(
        nodes, _probe_executor(tmp_path), on_event=lambda k, s: events.append((k, s))
    )
    assert scheduler.run() == {}
    for key in ("slow", "quick", "after-quick", "after-slow"):
        assert (key, "done") in events
    assert _ran(tmp_path, "after-quick")["end"] < _ran(tmp_path, "slow")["end"]
    assert _ran(tmp_path, "after-slow")["start"] >= _ran(tmp_path, "slow")["end"]
    assert _ran(tmp_path, "after-quick")["start"] >= _ran(tmp_path, "quick")["end"]


def test_the_longest_remaining_chain_goes_first(ray_session, tmp_path):
    # one job at a time: "head" leads a long chain, "leaf" is longer alone but ends there
    nodes = [
        _node("leaf", sleep=0.2, seconds=3.0, resources=TWO_SLOTS),
        _node("head", sleep=0.2, seconds=1.0, resources=TWO_SLOTS),
        _node("tail", deps=["head"], sleep=0.2, seconds=5.0, resources=TWO_SLOTS),
    ]
    assert Scheduler(nodes, _probe_executor(tmp_path)).run() == {}
    assert _ran(tmp_path, "head")["start"] < _ran(tmp_path, "leaf")["start"]


def test_finished_jobs_are_not_run_again(ray_session, tmp_path):
    nodes = [_node("old"), _node("new", deps=["old"])]
    scheduler = Scheduler(nodes, _probe_executor(tmp_path), done={"old"})
    assert scheduler.run() == {}
    assert not (tmp_path / "old").exists() and (tmp_path / "new").exists()


def test_short_jobs_sharing_a_batch_key_share_tasks(ray_session, tmp_path):
    nodes = [_node(f"head-{i}", sleep=0.05, batch="dataset-a") for i in range(12)]
    nodes += [_node("other", sleep=0.05, batch="dataset-b")]
    scheduler = Scheduler(nodes, _probe_executor(tmp_path))
    assert scheduler.run() == {}
    assert scheduler.stats.jobs == 13
    # spread over the two free slots, but far fewer tasks than jobs; never mixing keys
    assert 3 <= scheduler.stats.tasks < 13
    assert all((tmp_path / f"head-{i}").exists() for i in range(12))


def test_a_crash_is_retried_and_a_users_error_is_not(ray_session, tmp_path):
    nodes = [
        _node("flaky", fail="crash_once"),
        _node("after-flaky", deps=["flaky"]),
        _node("broken", fail="user"),
        _node("after-broken", deps=["broken"]),
        _node("doomed", fail="crash_always"),
    ]
    scheduler = Scheduler(nodes, _probe_executor(tmp_path), max_failures=2)
    failures = scheduler.run()
    assert set(failures) == {"broken", "doomed"}
    assert failures["broken"].kind == "user" and failures["doomed"].kind == "crash"
    assert (tmp_path / "after-flaky").exists()  # the retry succeeded, its dependant ran
    assert not (tmp_path / "after-broken").exists()
    assert len(list(tmp_path.glob("broken.try*"))) == 1  # never retried
    assert len(list(tmp_path.glob("doomed.try*"))) == 3  # the first try and two retries
    assert scheduler.stats.retries == 3


def test_a_write_failure_stops_new_jobs_from_starting(ray_session, tmp_path):
    nodes = [
        _node("full-disk", fail="write", resources=TWO_SLOTS, seconds=9.0),
        _node("later", resources=TWO_SLOTS, seconds=1.0),
    ]
    scheduler = Scheduler(nodes, _probe_executor(tmp_path))
    failures = scheduler.run()
    assert scheduler.stopped is not None and failures["full-disk"].kind == "write"
    assert not (tmp_path / "later").exists()


def test_a_task_whose_worker_keeps_dying_fails_as_a_crash_after_rays_retries(ray_session, tmp_path):
    nodes = [_node("dies", fail="die"), _node("after-dies", deps=["dies"]), _node("fine")]
    failures = Scheduler(nodes, _probe_executor(tmp_path)).run()
    assert set(failures) == {"dies"} and failures["dies"].kind == "crash"
    assert "its Ray task was lost" in failures["dies"].message
    # Ray ran it 1 + max_retries times, and the driver's own crash retries twice on top
    assert len(list(tmp_path.glob("dies.try*"))) == 3 * 3
    assert (tmp_path / "fine").exists() and not (tmp_path / "after-dies").exists()

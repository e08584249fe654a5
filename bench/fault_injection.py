"""Fault drill: SIGKILL a study's driver at random moments, resume each time, kill a job's
worker process mid-training, and check the end equals an uninterrupted run; prints tables.

python bench/fault_injection.py                       # offline MiniLM fine-tune study, 3 kills
python bench/fault_injection.py --kills 5 --seed 7    # other random moments
python bench/fault_injection.py --quick               # one seed, one epoch
python bench/fault_injection.py --study my.yaml       # drill a study of your own

What it checks, and prints:
- after every kill and at the end, no result a finished job wrote is rewritten (bytes and
  modification time) and no cached weak label is rewritten: finished work is never redone;
- a worker killed mid-job is run again by Ray from the job's checkpoint while the driver
  carries on;
- the final `results.parquet` metrics and `pgr.parquet` equal those of a run never killed;
- resume overhead: the drill's total driver time beyond the uninterrupted run's, per kill,
  and each resume's start-up (launch to its first job starting).
Exits 1 if a check fails. The kill moments come from `--seed`, so a failing drill repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import psutil

from w2s_ray.cache import cache_root

METRICS = ["job_id", "stage", "test_accuracy", "test_auroc", "agreement_with_weak"]

# Offline assets only (fetched on first use), fine-tuned so that jobs write checkpoints.
DEFAULT_STUDY = {
    "name": "fault-drill",
    "datasets": ["rotten_tomatoes"],
    "models": ["minilm-l3", "minilm-l6"],
    "seeds": [0, 1],
    "mode": "finetune",
    "data": {"n_train": 240, "n_test": 100},
    "train": {"epochs": 3, "batch_size": 16, "max_length": 48},
}


@dataclass
class Event:
    kind: str  # "driver killed", "worker killed", "finished"
    run: int  # which driver launch (1 = the first `run`)
    at_s: float  # seconds after that launch
    finished_jobs: int
    startup_s: float | None  # launch to the first job start of this launch
    rewritten: list[str] = field(default_factory=list)  # finished results touched again


@dataclass
class Drill:
    study_file: Path
    workdir: Path
    cache: Path
    num_cpus: int
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / "drivers.log"

    def driver(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "w2s_ray.cli", *args, "--num-cpus", str(self.num_cpus)],
            env={**os.environ, "W2S_CACHE": str(self.cache)},
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the local Ray it starts dies with it
        )

    def tail(self) -> str:
        return self.log.read_text()[-3000:]


def kill_driver(proc: subprocess.Popen) -> None:
    """SIGKILL the driver, then what it started (its local Ray), as a lost machine would."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def job_workers(proc: subprocess.Popen) -> list[psutil.Process]:
    """The Ray worker processes under this driver that run study jobs right now."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.cmdline()[:1] and child.cmdline()[0].startswith("ray::run_jobs_on_"):
                found.append(child)
    return found


def finished(study_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Each finished job's result file: its bytes and modification time."""
    out = {}
    for path in study_dir.glob("jobs/*/result.json"):
        with contextlib.suppress(OSError):
            out[path.parent.name] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


def label_files(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (cache / "labels").glob("*.parquet")}


def first_job_start(study_dir: Path, launched_at: float) -> float | None:
    starts = []
    for path in study_dir.glob("jobs/*/started.json"):
        with contextlib.suppress(OSError, ValueError):
            started = json.loads(path.read_text())["started_at"]
            if started >= launched_at:
                starts.append(started - launched_at)
    return min(starts, default=None)


def rewritten(before: dict[str, tuple[bytes, int]], now: dict[str, tuple[bytes, int]]) -> list:
    return sorted(job for job, seen in before.items() if now.get(job) != seen)


def run_uninterrupted(drill: Drill, study_dir: Path) -> float:
    started = time.monotonic()
    proc = drill.driver(["run", str(drill.study_file), "--study-dir", str(study_dir)])
    if proc.wait() != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{drill.tail()}")
    return time.monotonic() - started


def drill_kills(
    drill: Drill,
    study_dir: Path,
    kills: int,
    rng: random.Random,
    reference_s: float,
    kill_worker: bool,
) -> list[Event]:
    """Launch, kill at a random moment, resume: `kills` times. In the first launch (where
    the study is sure to be training) a job's worker is killed first."""
    events: list[Event] = []
    for run in range(1, kills + 1):
        args = ["run", str(drill.study_file), "--study-dir", str(study_dir)]
        before, launched = finished(study_dir), time.time()
        proc = drill.driver(args if run == 1 else ["resume", str(study_dir)])
        if run == 1 and kill_worker and kill_a_training_worker(proc, study_dir, launched):
            events.append(_event("worker killed", run, launched, study_dir, before))
        # a moment within what is left of the study: the uninterrupted run's time (start-up
        # included) for the jobs not yet done, less what this launch has run already
        share = 1 - len(finished(study_dir)) / max(1, _n_jobs(study_dir))
        left = reference_s * share - (time.time() - launched)
        deadline = time.monotonic() + rng.uniform(0.1, 0.9) * max(left, 5.0)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:  # it finished first: the drill's last resume is trivial
            events.append(_event("finished", run, launched, study_dir, before))
            return events
        kill_driver(proc)
        events.append(_event("driver killed", run, launched, study_dir, before))
    return events


def kill_a_training_worker(proc: subprocess.Popen, study_dir: Path, launched: float) -> bool:
    """SIGKILL the worker of a job that this launch has checkpointed (it is mid-training:
    its retry must go on from that checkpoint); False if the driver ended first."""
    while proc.poll() is None:
        ours = {worker.pid: worker for worker in job_workers(proc)}
        for path in study_dir.glob("jobs/*/checkpoint.pt"):
            with contextlib.suppress(OSError, ValueError, KeyError, psutil.NoSuchProcess):
                if path.stat().st_mtime > launched:
                    pid = json.loads((path.parent / "started.json").read_text())["pid"]
                    if pid in ours:
                        ours[pid].kill()
                        return True
        time.sleep(0.05)
    return False


def _n_jobs(study_dir: Path) -> int:
    plan = study_dir / "plan.json"
    if not plan.is_file():
        return 0
    return sum(len(jobs) for jobs in json.loads(plan.read_text())["stages"].values())


def _event(kind: str, run: int, launched: float, study_dir: Path, before: dict) -> Event:
    now = finished(study_dir)
    return Event(
        kind,
        run,
        time.time() - launched,
        len(now),
        first_job_start(study_dir, launched),
        rewritten(before, now),
    )


def finish(drill: Drill, study_dir: Path, run: int) -> Event:
    """The last resume, left to finish."""
    before, launched = finished(study_dir), time.time()
    proc = drill.driver(["resume", str(study_dir)])
    if proc.wait() != 0:
        raise SystemExit(f"the final resume failed:\n{drill.tail()}")
    return _event("finished", run, launched, study_dir, before)


def compare(study_dir: Path, reference_dir: Path) -> list[str]:
    """What differs from the uninterrupted run (empty: nothing)."""
    problems = []
    got = pl.read_parquet(study_dir / "results.parquet").select(METRICS).sort("job_id")
    want = pl.read_parquet(reference_dir / "results.parquet").select(METRICS).sort("job_id")
    if not got.equals(want):
        problems.append("results.parquet metrics differ from the uninterrupted run")
    if not pl.read_parquet(study_dir / "pgr.parquet").equals(
        pl.read_parquet(reference_dir / "pgr.parquet")
    ):
        problems.append("pgr.parquet differs from the uninterrupted run")
    return problems


def _own_cache(path: Path, shared: Path | None) -> Path:
    """A fresh cache for one run (labels, features), sharing only the downloaded assets."""
    path.mkdir(parents=True, exist_ok=True)
    if shared is not None and not (path / "assets").exists():
        (shared / "assets").mkdir(parents=True, exist_ok=True)
        (path / "assets").symlink_to((shared / "assets").resolve(), target_is_directory=True)
    return path


def run_drill(
    study_file: Path,
    workdir: Path,
    *,
    kills: int,
    seed: int,
    kill_worker: bool = True,
    cache: Path | None = None,
    num_cpus: int = 2,
) -> dict:
    """The whole drill; returns what happened and what was checked (see the module doc)."""
    drill = Drill(study_file, workdir, _own_cache(workdir / "cache-reference", cache), num_cpus)
    reference_dir, study_dir = workdir / "reference", workdir / "drilled"
    reference_s = run_uninterrupted(drill, reference_dir)
    drill.cache = _own_cache(workdir / "cache-drilled", cache)  # nothing reused from the above
    started = time.monotonic()
    rng = random.Random(seed)
    events = drill_kills(drill, study_dir, kills, rng, reference_s, kill_worker)
    kept_results = finished(study_dir)
    kept_labels = label_files(drill.cache)
    if events[-1].kind != "finished":
        events.append(finish(drill, study_dir, events[-1].run + 1))
    drill_s = time.monotonic() - started
    problems = compare(study_dir, reference_dir)
    touched = rewritten(kept_results, finished(study_dir))
    if touched:
        problems.append(f"finished jobs ran again: {', '.join(touched)}")
    labels_now = label_files(drill.cache)
    relabelled = sorted(name for name, seen in kept_labels.items() if labels_now.get(name) != seen)
    if relabelled:
        problems.append(f"cached weak labels were written again: {', '.join(relabelled)}")
    for event in events:
        if event.rewritten:
            problems.append(f"run {event.run} rewrote finished results: {event.rewritten}")
    resumed = {
        p.parent.name: p.read_text().split()[-1] for p in study_dir.glob("jobs/*/resumes.txt")
    }
    driver_kills = sum(e.kind == "driver killed" for e in events)
    return {
        "reference_s": reference_s,
        "drill_s": drill_s,
        "driver_kills": driver_kills,
        "overhead_per_kill_s": (drill_s - reference_s) / driver_kills if driver_kills else None,
        "events": events,
        "resumed_from_step": resumed,
        "problems": problems,
    }


def print_report(report: dict) -> None:
    print("| event | launch | at s | jobs finished | start-up s | finished results rewritten |")
    print("|---|---|---|---|---|---|")
    for e in report["events"]:
        startup = "-" if e.startup_s is None else f"{e.startup_s:.1f}"
        print(
            f"| {e.kind} | {e.run} | {e.at_s:.1f} | {e.finished_jobs} | {startup} "
            f"| {len(e.rewritten)} |"
        )
    print()
    per_kill = report["overhead_per_kill_s"]
    print("| uninterrupted s | drilled s (all launches) | driver kills | overhead per kill s |")
    print("|---|---|---|---|")
    print(
        f"| {report['reference_s']:.1f} | {report['drill_s']:.1f} | {report['driver_kills']} "
        f"| {'-' if per_kill is None else f'{per_kill:.1f}'} |"
    )
    print()
    resumed = report["resumed_from_step"].items()
    steps = ", ".join(f"{job} from step {step}" for job, step in resumed)
    print(f"jobs resumed from a checkpoint: {steps or 'none'}")
    if report["problems"]:
        print("FAILED:\n- " + "\n- ".join(report["problems"]))
    else:
        print("identical to the uninterrupted run; no finished job or cached label redone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, help="study YAML (default: an offline drill)")
    parser.add_argument("--kills", type=int, default=3, help="driver SIGKILLs before finishing")
    parser.add_argument("--seed", type=int, default=0, help="picks the kill moments")
    parser.add_argument("--no-worker-kill", action="store_true")
    parser.add_argument("--quick", action="store_true", help="one seed, one epoch: ~2 min")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep the study dirs here (default: temp)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="w2s-fault-drill-"))
    workdir.mkdir(parents=True, exist_ok=True)
    study = args.study
    if study is None:
        import yaml

        spec = DEFAULT_STUDY
        if args.quick:
            spec = {**spec, "seeds": [0], "train": {**spec["train"], "epochs": 1}}
        study = workdir / "fault-drill.yaml"
        study.write_text(yaml.safe_dump(spec))
    report = run_drill(
        study,
        workdir,
        kills=args.kills,
        seed=args.seed,
        kill_worker=not args.no_worker_kill,
        cache=cache_root(),  # its downloaded assets are shared with the drill's runs
        num_cpus=args.num_cpus,
    )
    print_report(report)
    print(f"\nstudy directories and driver logs: {workdir}")
    sys.exit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()

"""The dependency-driven scheduler at scale (simulated) and on real jobs; prints tables.

python bench/scheduler_scale.py            # repro-pythia's 3,146 jobs on 4 nodes x 8 GPUs
python bench/scheduler_scale.py --quick    # 300 of them on 2 nodes x 4 GPUs, 20 s, no Tune
python bench/scheduler_scale.py --probe    # a real 80-job probe study on the local 2-CPU Ray

Simulation: a `ray.cluster_utils.Cluster` of loopback nodes declares the GPUs; each planned
job becomes the scheduler's Node as `w2s-ray run` builds it (deps, resources, estimated
seconds), whose payload sleeps for the estimate times a scale that makes the lower bound
--target seconds. Lower bound: the longer of the critical path and, for each resource, the
work (amount x seconds) over what the cluster holds. Ray gives each GPU task a fresh worker
process (max_calls=1); on 2 cores that start-up costs more than the jobs, so the study runs
with the GPUs declared again as a custom resource (tasks on pooled workers), and a sample
of --compare jobs runs both ways and as one Ray Tune run (a fresh trial actor per job).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

GIB = 1024**3
POOLED_GPU = "pooled_GPU"  # the GPUs again, as a custom resource: tasks on pooled workers
STUDIES = Path(__file__).parent.parent / "studies"


@dataclasses.dataclass(frozen=True)
class SleepExecutor:
    """The scheduler's executor in a simulation: each payload is seconds to sleep. A task
    appends when it ran to a file of its worker process (every node is on this machine)."""

    log_dir: str

    def __call__(self, payloads: list[float]) -> list[None]:
        started = time.time()
        for seconds in payloads:
            time.sleep(seconds)
        if payloads:  # an empty task only measures the round trip
            with open(os.path.join(self.log_dir, f"{os.getpid()}.log"), "a") as log:
                log.write(f"{started} {time.time()}\n")
        return [None] * len(payloads)


def task_spans(log_dir: str) -> tuple[list[tuple[float, ...]], list[float]]:
    """(start, end) of every task logged, and the gaps between one process's tasks: a slot
    left idle while the driver collects, decides and submits, and Ray leases a worker."""
    spans, gaps = [], []
    for path in Path(log_dir).glob("*.log"):
        mine = sorted(tuple(map(float, line.split())) for line in path.read_text().splitlines())
        spans += mine
        gaps += [start - end for (_, end), (start, _) in itertools.pairwise(mine)]
    return spans, gaps


class PeakRss:
    """The driver's resident memory before the block and its peak during it (every 50 ms)."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, psutil.Process().memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start_cluster(nodes: int, gpus: int, cpus: int) -> Any:
    """Loopback nodes, each declaring `gpus` GPUs twice (GPU, and pooled_GPU)."""
    import logging

    import ray
    from ray.cluster_utils import Cluster

    node = {
        "num_cpus": cpus,
        "num_gpus": gpus,
        "resources": {POOLED_GPU: gpus},
        "memory": gpus * 128 * GIB,  # logical: a GPU node's host memory, never the binding one
        "object_store_memory": 100 * 1024**2,
        "include_dashboard": False,
        "node_ip_address": "127.0.0.1",
    }
    cluster = Cluster(initialize_head=True, head_node_args=node)
    for _ in range(nodes - 1):
        cluster.add_node(**node)
    ray.init(
        address=cluster.address,
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return cluster


def study_nodes(path: Path, cluster: dict[str, float]) -> tuple[int, list[Any]]:
    """The study's jobs as `w2s-ray run` hands them to the scheduler (payload: estimated
    seconds); the queue orders by the estimates, the payloads sleep them scaled."""
    from w2s_ray.spec import parse_spec
    from w2s_ray.study.plan import plan_jobs, resolve
    from w2s_ray.study.scheduling import schedule

    study = resolve(parse_spec(yaml.safe_load(path.read_text())))
    jobs = [job for jobs in plan_jobs(study).values() for job in jobs]
    nodes = [dataclasses.replace(n, payload=n.seconds) for n in schedule(study, jobs, cluster)]
    return len(jobs), nodes


def gpus_as(key: str, node: Any, scale: float = 1.0) -> Any:
    """The node asking for its GPUs as `key` (GPU: a fresh worker process per task, Ray's
    default; POOLED_GPU: pooled workers), sleeping `scale` x its payload."""
    res = {(key if k in ("GPU", POOLED_GPU) else k): v for k, v in node.resources.items()}
    return dataclasses.replace(node, resources=res, payload=node.payload * scale)


def first_jobs(nodes: list[Any], count: int) -> list[Any]:
    """A prefix of the plan closed under dependencies: every kept job's inputs are kept."""
    by_key, keep = {n.key: n for n in nodes}, {}

    def add(key: str) -> None:
        if key not in keep:
            for dep in by_key[key].deps:
                add(dep)
            keep[key] = by_key[key]

    for node in nodes:
        if len(keep) >= count:
            break
        add(node.key)
    return list(keep.values())


def bounds(nodes: list[Any], totals: dict[str, float]) -> dict[str, Any]:
    """No schedule beats the critical path, nor any resource's work over its capacity.
    `list`: the scheduler's own order replayed without Ray (w2s_ray.study.makespan)."""
    from w2s_ray.study.makespan import simulate
    from w2s_ray.study.scheduler import chain_lengths

    sleeps = [gpus_as("GPU", dataclasses.replace(n, seconds=n.payload)) for n in nodes]
    critical = max(chain_lengths(sleeps).values(), default=0.0)
    work: dict[str, float] = {}
    for node in nodes:
        for name, amount in node.resources.items():
            work[name] = work.get(name, 0.0) + amount * node.payload
    spans = {name: w / totals[name] for name, w in work.items() if totals.get(name)}
    # on a tie (as many CPUs per GPU asked as held) name the GPUs
    binding = max(spans, key=lambda name: (round(spans[name], 6), "GPU" in name))
    bound, list_schedule = max(critical, spans[binding]), simulate(sleeps, int(totals["GPU"]))
    return {"critical": critical, "binding": binding, "work": spans[binding], "bound": bound,
            "list": list_schedule.makespan}  # fmt: skip


def run_scheduler(nodes: list[Any]) -> dict[str, float]:
    from w2s_ray.study.scheduler import Scheduler

    log_dir = tempfile.mkdtemp(prefix="w2s-bench-sched-")
    with PeakRss() as rss:
        began, started = time.time(), time.monotonic()
        scheduler = Scheduler(nodes, SleepExecutor(log_dir))
        failures = scheduler.run()
        wall = time.monotonic() - started
    if failures:
        raise RuntimeError(f"{len(failures)} simulated jobs failed: {next(iter(failures))}")
    spans, gaps = task_spans(log_dir)
    shutil.rmtree(log_dir, ignore_errors=True)
    return {
        "tasks": scheduler.stats.tasks,
        "runs": len(spans),  # more than tasks: Ray ran some again (a worker lost)
        "rss_before": rss.before / 2**20,
        "wall": wall,
        "driver": scheduler.stats.driver_seconds,
        "rss": rss.peak / 2**20,
        "first_start": min(s for s, _ in spans) - began,
        "last_start": max(s for s, _ in spans) - began,
        "slept": sum(e - s for s, e in spans) / sum(n.payload for n in nodes),
        "running": sum(e - s for s, e in spans) / wall,
        "gap": statistics.median(gaps) if gaps else 0.0,
    }


def warm_pool(nodes: list[Any], totals: dict[str, float]) -> tuple[float, int]:
    """A worker process for each task the smallest jobs can run at once, started before
    timing: here 4 nodes start theirs on 2 cores, in a real cluster each on its own."""
    import ray

    @ray.remote
    def hold(seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()

    small = min(nodes, key=lambda n: sorted(n.resources.items())).resources
    shape = {k: v for k, v in small.items() if k != "memory"}
    slots = int(min(totals[k] / v for k, v in shape.items()))
    options = {"num_cpus": shape.pop("CPU", 0.0), "resources": shape}
    started, seen = time.monotonic(), set()
    for _ in range(6):  # while some tasks had to share a process, more processes start
        pids = ray.get([hold.options(**options).remote(3.0) for _ in range(slots)])
        seen |= set(pids)
        if len(set(pids)) == slots:
            break
    return time.monotonic() - started, len(seen)


def run_tune(nodes: list[Any]) -> dict[str, float]:
    """The same jobs as one Tune run: a trial per job with its resources, a grid over jobs."""
    from ray import tune

    sleeps = {n.key: n.payload for n in nodes}
    needs = {n.key: dict(n.resources) for n in nodes}

    def trial(config: dict[str, str]) -> None:
        time.sleep(sleeps[config["job"]])
        tune.report({"done": 1.0})

    storage = tempfile.mkdtemp(prefix="w2s-bench-tune-")
    tuner = tune.Tuner(
        tune.with_resources(trial, lambda config: needs[config["job"]]),
        param_space={"job": tune.grid_search(list(sleeps))},
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    started = time.monotonic()
    results = tuner.fit()
    wall = time.monotonic() - started
    shutil.rmtree(storage, ignore_errors=True)
    if results.num_errors:
        raise RuntimeError(f"{results.num_errors} Tune trials failed")
    return {"wall": wall, "runs": len(results)}


def round_trip(remote: Any, options: dict[str, Any], calls: int = 8) -> float:
    """Seconds per task of `calls` empty tasks run one after another."""
    import ray

    started = time.monotonic()
    for _ in range(calls):
        ray.get(remote.options(**options).remote(SleepExecutor(""), []))
    return (time.monotonic() - started) / calls


def table(header: list[str], *rows: list[object]) -> None:
    def cell(c: object) -> str:
        if isinstance(c, float):
            return f"{c:,.3f}" if abs(c) < 10 else f"{c:,.1f}"
        return f"{c:,}" if isinstance(c, int) else str(c)

    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(map(cell, cells)) + " |")
    print()


def run_simulation(args: argparse.Namespace) -> None:
    import ray

    cluster = start_cluster(args.nodes, args.gpus, args.cpus)
    try:
        totals = {k: float(v) for k, v in ray.cluster_resources().items()}
        started = time.monotonic()
        jobs, nodes = study_nodes(args.study, {k: v for k, v in totals.items() if k != POOLED_GPU})
        planned = time.monotonic() - started
        nodes = first_jobs(nodes, args.jobs) if 0 < args.jobs < len(nodes) else nodes
        scale = args.target / bounds(nodes, totals)["bound"]
        print(f"{args.study.name}: {jobs:,} jobs planned in {planned:.1f} s; at scale "
              f"{scale:.2e} (--target {args.target:.0f} s); {args.nodes} nodes x {args.gpus} "
              f"GPUs, {args.cpus} CPUs each\n")  # fmt: skip
        full = [gpus_as(POOLED_GPU, n, scale) for n in nodes]
        if not args.cold:
            warm, processes = warm_pool(full, totals)
            print(f"worker pool warmed first: {processes} processes in {warm:.1f} s\n")
        load, got = os.getloadavg()[0], run_scheduler(full)
        report_scale(len(full), got, bounds(full, totals), load)
        if args.compare:
            compare(full, args, totals)
    finally:
        ray.shutdown()
        cluster.shutdown()


def report_scale(jobs: int, got: dict[str, float], b: dict[str, Any], load: float) -> None:
    wall, bound = got["wall"], b["bound"]
    table(
        ["jobs", "tasks", "makespan s", "critical path s", "work / capacity s", "lower bound s",
         "list schedule without Ray s", "makespan / bound", "(makespan - bound) / job s",
         "driver s / job", "driver RSS MiB: before, peak"],
        [jobs, got["tasks"], wall, b["critical"], f"{b['work']:.1f} ({b['binding']})", bound,
         b["list"], wall / bound, (wall - bound) / jobs, got["driver"] / jobs,
         f"{got['rss_before']:.0f}, {got['rss']:.0f}"],
    )  # fmt: skip
    table(
        ["load average", "first task started s", "last task started s", "tasks running (mean)",
         "slept / asked", "gap between a process's tasks (median) s", "task runs"],
        [load, got["first_start"], got["last_start"], got["running"], got["slept"], got["gap"],
         int(got["runs"])],
    )  # fmt: skip


def compare(full: list[Any], args: argparse.Namespace, totals: dict[str, float]) -> None:
    """Every k-th job, without deps: the scheduler on pooled workers and on GPU tasks, and
    one Tune run, on the same cluster and sleeps."""
    from w2s_ray.study.scheduler import run_jobs_on_cpu, run_jobs_on_gpu

    fresh = round_trip(run_jobs_on_gpu, {"num_gpus": 1})
    reused = round_trip(run_jobs_on_cpu, {"num_cpus": 1, "resources": {POOLED_GPU: 1}})
    table(["one empty task after another", "s per task"],
          ["GPU task (a fresh worker process each)", fresh],
          ["pooled worker", reused])  # fmt: skip
    sample = [dataclasses.replace(n, deps=()) for n in full[:: max(1, len(full) // args.compare)]]
    sample = sample[: args.compare]
    bound, gpus = bounds(sample, totals)["bound"], totals["GPU"]
    runs = [
        ("scheduler, pooled workers", lambda: run_scheduler(sample)),
        ("scheduler, GPU tasks", lambda: run_scheduler([gpus_as("GPU", n) for n in sample])),
    ]
    if not args.no_tune:
        runs.append(
            ("Ray Tune, a trial per job", lambda: run_tune([gpus_as("GPU", n) for n in sample]))
        )
    rows = []
    for name, run in runs:
        load, got = os.getloadavg()[0], run()
        wall, lost = got["wall"], (got["wall"] - bound) / len(sample)
        cells = [name, len(sample), int(got["runs"]), load, wall, bound, wall / bound]
        rows.append([*cells, lost, lost * gpus])
    table(["runner", "jobs", "tasks run", "load average", "wall s", "lower bound s",
           "wall / bound", "(wall - bound) / job s", "GPU-s lost per job"], *rows)  # fmt: skip


def probe(args: argparse.Namespace) -> None:
    """A real probe study twice: the first run computes the frozen features unless the
    cache has them; the second, in a new study directory, finds them there."""
    import ray
    from rich.console import Console

    from w2s_ray.spec import parse_spec
    from w2s_ray.study.runner import run_study

    raw = yaml.safe_load((STUDIES / "quickstart.yaml").read_text())
    raw.update(name="scale-probe", seeds=list(range(args.probe_seeds)))
    spec = parse_spec(raw)
    root, rows = Path(tempfile.mkdtemp(prefix="w2s-bench-probe-")), []
    try:
        for run in ("first", "second (a new study directory)"):
            study_dir = root / run.split()[0]
            load, started = os.getloadavg()[0], time.monotonic()
            quiet = Console(quiet=True)
            outcome = run_study(spec, study_dir, num_cpus=args.local_cpus, console=quiet)
            wall = time.monotonic() - started
            ray.shutdown()
            if outcome.failures:
                raise RuntimeError(f"the probe study failed: {next(iter(outcome.failures))}")
            jobs, job_s, span = job_times(study_dir)
            ideal = job_s / args.local_cpus
            rows.append([run, jobs, load, wall, span, job_s, args.local_cpus,
                         (wall - ideal) / jobs, (span - ideal) / jobs])  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    table(["run", "jobs", "load average", "wall s", "jobs span s", "sum of job s", "CPUs",
           "overhead / job s (wall)", "overhead / job s (span)"], *rows)  # fmt: skip


def job_times(study_dir: Path) -> tuple[int, float, float]:
    """(jobs, sum of their wall_seconds, from the first job's start to the last result)."""
    total, first, last, count = 0.0, float("inf"), 0.0, 0
    for result in (study_dir / "jobs").glob("*/result.json"):
        started = json.loads((result.parent / "started.json").read_text())["started_at"]
        total += float(json.loads(result.read_text())["wall_seconds"])
        first, last = min(first, started), max(last, result.stat().st_mtime)
        count += 1
    return count, total, last - first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=STUDIES / "repro-pythia.yaml")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--gpus", type=int, default=8, help="per node")
    parser.add_argument("--cpus", type=int, default=64, help="per node (logical)")
    parser.add_argument("--target", type=float, default=90.0, help="lower bound, seconds")
    parser.add_argument("--jobs", type=int, default=0, help="only a dependency-closed prefix")
    parser.add_argument("--compare", type=int, default=100, help="jobs; 0: skip")
    parser.add_argument("--no-tune", action="store_true", help="compare without Tune")
    parser.add_argument("--cold", action="store_true", help="time the pool's start-up too")
    parser.add_argument("--quick", action="store_true", help="2 nodes x 4 GPUs, 300 jobs, no Tune")
    parser.add_argument("--probe", action="store_true", help="the real probe study instead")
    parser.add_argument("--probe-seeds", type=int, default=7, help="7 seeds: 80 jobs")
    parser.add_argument("--local-cpus", type=int, default=2)
    args = parser.parse_args()
    if args.quick:  # under two minutes on 2 cores (the pool start-up is most of it)
        args.nodes, args.gpus, args.cpus, args.jobs, args.target = 2, 4, 32, 300, 20.0
        args.compare, args.no_tune = 16, True
    # both are read when ray is first imported
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # nodes on loopback only
    os.environ["RAY_AUTH_MODE"] = "disabled"  # token auth kills workers on added nodes
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no Tune console tables
    if args.probe:
        probe(args)
    else:
        run_simulation(args)


if __name__ == "__main__":
    main()

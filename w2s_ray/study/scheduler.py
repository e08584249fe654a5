"""One dependency-driven scheduler: a job starts as soon as its inputs exist and resources
are free. No stage waits for another stage's slowest job.

Jobs run as Ray tasks. A Tune trial costs a second or more of start-up (a fresh actor per
trial, measured in docs/benchmarks.md); a task on one of Ray's pooled workers costs
milliseconds, which is what thousands of short jobs need. The driver keeps the order:
of the ready jobs it submits the one with the longest remaining chain of estimated work
first (then the biggest), and only as many as the cluster has room for, so a late critical
job is not stuck behind a queue Ray would run first-come first-served.

Short jobs that share a `batch` key (e.g. probe heads on one dataset's features) run
several to a task; each still writes its own result. Retries: Ray re-runs a task whose
worker or node died (`max_retries`); a job that raised a crash is submitted again by the
driver; a user's error is not retried. Nothing here knows what a job is: the study's
executor (w2s_ray.study.execute_jobs) runs the payloads.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import ray

from w2s_ray.study.outcome import JobError

log = logging.getLogger(__name__)

MAX_FAILURES = 2  # crashes a job may have before it counts as failed
BATCH_SECONDS = 5.0  # short jobs are grouped into tasks of about this much estimated work
MAX_BATCH = 32
REFRESH_SECONDS = 5.0  # how often the driver re-reads what the cluster holds (lost nodes)
DEMAND_BUNDLES = 256  # waiting jobs shown to the autoscaler at most
RESOURCE_KEYS = ("CPU", "GPU", "memory")

Shape = tuple[tuple[str, float], ...]
Listener = Callable[[str, str], None]  # (job key, "running" | "done" | "failed")


@dataclass(frozen=True)
class Node:
    """One job as the scheduler sees it."""

    key: str
    deps: tuple[str, ...]
    resources: Mapping[str, float]  # CPU, GPU (fractions pack a device), memory, custom
    seconds: float  # estimated run time: orders the queue and sizes batches
    batch: str | None = None  # short nodes with the same key may share one task
    payload: Any = None  # what the executor receives


class Executor(Protocol):
    """Runs payloads one after another in a Ray worker; None for each that finished."""

    def __call__(self, payloads: list[Any]) -> list[JobError | None]: ...


# A worker running jobs shows as `ray::run_jobs_on_cpu` / `ray::run_jobs_on_gpu` in `ps`.
# CPU tasks reuse pooled worker processes (loaded libraries and caches stay warm); a GPU
# task gets a fresh process (max_calls=1), so a worker never keeps a CUDA context on a
# device Ray later gives to someone else.
@ray.remote(max_retries=MAX_FAILURES)
def run_jobs_on_cpu(executor: Executor, payloads: list[Any]) -> list[JobError | None]:
    return executor(payloads)


@ray.remote(num_gpus=1, max_retries=MAX_FAILURES)
def run_jobs_on_gpu(executor: Executor, payloads: list[Any]) -> list[JobError | None]:
    return executor(payloads)


@dataclass
class SchedulerStats:
    """What the driver spent, for bench/scheduler_scale.py and the closing numbers."""

    tasks: int = 0
    jobs: int = 0
    retries: int = 0
    driver_seconds: float = 0.0  # time the driver was busy deciding and submitting
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None


def _shape(resources: Mapping[str, float]) -> Shape:
    return tuple(sorted((k, float(v)) for k, v in resources.items() if v))


def _children(by_key: Mapping[str, Node]) -> dict[str, list[str]]:
    """Each node's dependants within `by_key` (a dependency outside it is already done)."""
    children: dict[str, list[str]] = defaultdict(list)
    for node in by_key.values():
        for dep in node.deps:
            if dep in by_key:
                children[dep].append(node.key)
    return children


def chain_lengths(nodes: Iterable[Node]) -> dict[str, float]:
    """For each node, the estimated seconds of the longest chain from it to the end of the
    graph, itself included: the critical path runs through the largest values."""
    by_key = {n.key: n for n in nodes}
    children = _children(by_key)
    length: dict[str, float] = {}
    for key in reversed(_topological(by_key, children)):
        below = [length[c] for c in children[key]]
        length[key] = by_key[key].seconds + max(below, default=0.0)
    return length


def _topological(by_key: Mapping[str, Node], children: Mapping[str, list[str]]) -> list[str]:
    pending = {k: sum(d in by_key for d in n.deps) for k, n in by_key.items()}
    order = [k for k, count in pending.items() if count == 0]
    for key in order:  # grows while it is walked
        for child in children.get(key, []):
            pending[child] -= 1
            if pending[child] == 0:
                order.append(child)
    if len(order) != len(by_key):
        raise ValueError("the job graph has a cycle")
    return order


class Scheduler:
    """Runs a graph of nodes on the connected Ray cluster; see the module's docstring."""

    def __init__(
        self,
        nodes: list[Node],
        executor: Executor,
        *,
        done: set[str] | None = None,
        on_event: Listener | None = None,
        max_failures: int = MAX_FAILURES,
        batch_seconds: float = BATCH_SECONDS,
    ) -> None:
        self.nodes = {n.key: n for n in nodes}
        self.done = {k for k in (done or set()) if k in self.nodes}
        self.on_event = on_event or (lambda key, status: None)
        self.max_failures = max_failures
        self.batch_seconds = batch_seconds
        self.failures: dict[str, JobError] = {}  # jobs that ended failed, with why
        self.stopped: JobError | None = None  # a write failure: nothing more is started
        self.stats = SchedulerStats()
        self._executor_ref = ray.put(executor)
        todo = {k: n for k, n in self.nodes.items() if k not in self.done}
        self._priority = chain_lengths(todo.values())
        self._children = _children(todo)
        self._waiting_on = {k: sum(d not in self.done for d in n.deps) for k, n in todo.items()}
        self._crashes: dict[str, int] = defaultdict(int)
        self._ready: dict[Shape, list[tuple[float, float, str]]] = defaultdict(list)
        self._running: dict[ray.ObjectRef, tuple[list[str], Shape]] = {}
        self._in_use: dict[str, float] = defaultdict(float)
        self._total: dict[str, float] = {}
        self._refreshed_at = -math.inf
        self._asked = False  # demand shown to the autoscaler, to withdraw at the end
        for key, count in self._waiting_on.items():
            if count == 0:
                self._make_ready(key)

    # ---- the loop ----------------------------------------------------------------------
    def run(self) -> dict[str, JobError]:
        """Run until nothing more can run; returns the jobs that failed (their dependants
        are simply left unrun)."""
        while True:
            busy = time.monotonic()
            if not self.stopped:
                self._dispatch()
            self.stats.driver_seconds += time.monotonic() - busy
            if not self._running:
                break
            finished, _ = ray.wait(list(self._running), num_returns=1, timeout=REFRESH_SECONDS)
            if finished:  # collect everything else that ended meanwhile, in one go
                finished, _ = ray.wait(
                    list(self._running), num_returns=len(self._running), timeout=0
                )
            busy = time.monotonic()
            for ref in finished:
                self._collect(ref)
            self.stats.driver_seconds += time.monotonic() - busy
        self.stats.ended_at = time.monotonic()
        self._ask_autoscaler(withdraw=True)  # what is left will not run in this study
        return self.failures

    def _refresh_cluster(self) -> None:
        now = time.monotonic()
        if now - self._refreshed_at < REFRESH_SECONDS:
            return
        self._refreshed_at = now
        self._total = {k: float(v) for k, v in ray.cluster_resources().items()}
        self._ask_autoscaler()

    def _ask_autoscaler(self, withdraw: bool = False) -> None:
        """Tell an autoscaling cluster what the jobs waiting for room need: the driver holds
        them back to keep its order, so Ray alone would never see that demand (on a fixed
        cluster this does nothing)."""
        from ray.autoscaler.sdk import request_resources

        waiting = [] if withdraw else sorted(e for h in self._ready.values() for e in h)
        waiting = waiting[:DEMAND_BUNDLES]
        if not waiting and not self._asked:
            return
        running = [dict(shape) for _, shape in self._running.values()]
        wanted = [dict(_shape(self.nodes[key].resources)) for _, _, key in waiting]
        self._asked = bool(wanted)
        request_resources(bundles=[*running, *wanted] if wanted else [])

    def _free(self, name: str) -> float:
        return self._total.get(name, 0.0) - self._in_use[name]

    def _fits(self, shape: Shape) -> bool:
        return all(self._free(name) >= amount - 1e-9 for name, amount in shape)

    def _best_ready(self, only_fitting: bool) -> Shape | None:
        best: tuple[float, float, str] | None = None
        chosen = None
        for shape, heap in self._ready.items():
            if (
                heap
                and (not only_fitting or self._fits(shape))
                and (best is None or heap[0] < best)
            ):
                best, chosen = heap[0], shape
        return chosen

    def _dispatch(self) -> None:
        self._refresh_cluster()
        while (shape := self._best_ready(only_fitting=True)) is not None:
            self._submit(shape)
        if not self._running and any(self._ready.values()):
            # nothing fits what the cluster holds now (a node was lost): hand the best job to
            # Ray anyway, which runs it once a node with room joins
            shape = self._best_ready(only_fitting=False)
            assert shape is not None
            log.warning("no node has room for a job needing %s; waiting for one", dict(shape))
            self._submit(shape)

    def _slots(self, shape: Shape) -> int:
        """How many tasks of `shape` fit in what is free now (at least one)."""
        fits = [self._free(name) / amount for name, amount in shape if amount > 0]
        return max(1, int(min(fits, default=1)))

    def _take_batch(self, shape: Shape) -> list[str]:
        heap = self._ready[shape]
        first = heapq.heappop(heap)[2]
        batch_key = self.nodes[first].batch
        seconds = self.nodes[first].seconds
        if batch_key is None or seconds >= self.batch_seconds:
            return [first]
        same = [entry for entry in heap if self.nodes[entry[2]].batch == batch_key]
        # spread a group over the free slots rather than queue it all behind one task
        share = math.ceil((len(same) + 1) / (self._slots(shape)))
        taken = [first]
        for entry in sorted(same):
            node = self.nodes[entry[2]]
            if len(taken) >= min(share, MAX_BATCH) or seconds + node.seconds > self.batch_seconds:
                break
            taken.append(entry[2])
            seconds += node.seconds
        if len(taken) > 1:
            chosen = set(taken[1:])
            self._ready[shape] = [e for e in heap if e[2] not in chosen]
            heapq.heapify(self._ready[shape])
        return taken

    def _submit(self, shape: Shape) -> None:
        keys = self._take_batch(shape)
        resources = dict(shape)
        options: dict[str, Any] = {
            "num_cpus": resources.pop("CPU", 0.0),
            "num_gpus": resources.pop("GPU", 0.0),
        }
        if "memory" in resources:
            options["memory"] = resources.pop("memory")
        if resources:
            options["resources"] = resources
        remote = run_jobs_on_gpu if options["num_gpus"] else run_jobs_on_cpu
        payloads = [self.nodes[k].payload for k in keys]
        ref = remote.options(**options).remote(self._executor_ref, payloads)
        self._running[ref] = (keys, shape)
        for name, amount in shape:
            self._in_use[name] += amount
        self.stats.tasks += 1
        for key in keys:
            self.on_event(key, "running")

    def _collect(self, ref: ray.ObjectRef) -> None:
        keys, shape = self._running.pop(ref)
        for name, amount in shape:
            self._in_use[name] -= amount
        try:
            outcomes: list[JobError | None] = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker or node died more than Ray retries
            lost = JobError("crash", f"its Ray task was lost: {exc}".splitlines()[0], str(exc))
            outcomes = [lost] * len(keys)
        for key, outcome in zip(keys, outcomes, strict=True):
            self._settle(key, outcome)

    def _settle(self, key: str, outcome: JobError | None) -> None:
        if outcome is None:
            self.done.add(key)
            self.stats.jobs += 1
            self.on_event(key, "done")
            for child in self._children.get(key, []):
                self._waiting_on[child] -= 1
                if self._waiting_on[child] == 0:
                    self._make_ready(child)
            return
        if outcome.kind == "crash" and self._crashes[key] < self.max_failures:
            self._crashes[key] += 1
            self.stats.retries += 1
            log.warning("%s crashed (%s); trying again", key, outcome.line)
            self._make_ready(key)
            return
        if outcome.kind == "write" and self.stopped is None:
            self.stopped = outcome
        self.failures[key] = outcome
        self.on_event(key, "failed")

    def _make_ready(self, key: str) -> None:
        node = self.nodes[key]
        # heapq is a min-heap: the longest chain, then the biggest job, comes out first
        entry = (-self._priority.get(key, node.seconds), -node.seconds, key)
        heapq.heappush(self._ready[_shape(node.resources)], entry)

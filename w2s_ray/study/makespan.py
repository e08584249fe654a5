"""How long a study takes on N devices: the scheduler's list scheduling replayed on the
estimated seconds, without Ray.

As w2s_ray.study.scheduler does, a job is ready once its dependencies finish, and of the
ready jobs that fit, the one with the longest remaining chain (then the biggest) starts
first. GPUs are packed per device as Ray places fractional requests: a share below one
GPU must fit on a single device, a job of k GPUs takes k free devices. CPUs are one pool.
Jobs that ask for none of the simulated resource (probe heads on a GPU cluster) run at
once: CPUs are taken to be plentiful beside GPUs.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass

from w2s_ray.study.scheduler import Node, chain_lengths

GRID = 8  # units per device: w2s_ray.study.resources.GPU_GRID


@dataclass(frozen=True)
class Simulation:
    makespan: float  # seconds until the last job ends
    device_seconds: float  # Σ share × seconds: what the jobs hold of the devices
    critical_path: float  # the longest chain of dependent jobs, in seconds
    devices: int

    @property
    def lower_bound(self) -> float:
        """No schedule beats the longest chain, nor the work spread evenly on every device."""
        return max(self.critical_path, self.device_seconds / self.devices)


class _Devices:
    """Free units per device (or one pool); places and frees jobs' demands."""

    def __init__(self, devices: int, pooled: bool) -> None:
        self.free = [GRID * devices] if pooled else [GRID] * devices
        self.pooled = pooled

    def clamp(self, demand: int) -> int:
        """A demand beyond the whole cluster would wait for ever; it takes everything."""
        return min(demand, sum(self.free) if self.pooled else GRID * len(self.free))

    def place(self, demand: int) -> list[tuple[int, int]] | None:
        """[(device, units)] for `demand`, or None when it does not fit now."""
        if demand == 0:
            return []
        if self.pooled or demand < GRID:
            fitting = [i for i, f in enumerate(self.free) if f >= demand]
            if not fitting:
                return None
            best = min(fitting, key=lambda i: self.free[i])  # best fit keeps whole devices free
            return [(best, demand)]
        empty = [i for i, f in enumerate(self.free) if f == GRID]
        need = math.ceil(demand / GRID)
        return [(i, GRID) for i in empty[:need]] if len(empty) >= need else None

    def take(self, placement: list[tuple[int, int]], sign: int) -> None:
        for device, units in placement:
            self.free[device] -= sign * units


def _best_fitting(ready: dict[int, list[tuple[float, float, str]]], pool: _Devices) -> int | None:
    """The demand whose best ready job comes first among those that fit now."""
    best = None
    for units, heap in ready.items():
        better = heap and (best is None or heap[0] < ready[best][0])
        if better and pool.place(units) is not None:
            best = units
    return best


def simulate(nodes: list[Node], devices: int, unit: str = "GPU") -> Simulation:
    """Replay the scheduler on `devices` GPUs (or CPUs when `unit` is "CPU")."""
    pool = _Devices(devices, pooled=unit != "GPU")
    by_key = {n.key: n for n in nodes}
    priority = chain_lengths(nodes)
    demand = {n.key: pool.clamp(math.ceil(GRID * n.resources.get(unit, 0.0) - 1e-9)) for n in nodes}
    children: dict[str, list[str]] = defaultdict(list)
    waiting: dict[str, int] = {}
    for node in nodes:
        deps = [d for d in node.deps if d in by_key]
        waiting[node.key] = len(deps)
        for dep in deps:
            children[dep].append(node.key)
    ready: dict[int, list[tuple[float, float, str]]] = defaultdict(list)

    def make_ready(key: str) -> None:  # longest chain first, then the biggest job
        heapq.heappush(ready[demand[key]], (-priority[key], -by_key[key].seconds, key))

    for key in (k for k, count in waiting.items() if count == 0):
        make_ready(key)
    running: list[tuple[float, str, list[tuple[int, int]]]] = []
    now = 0.0
    while True:
        while (units := _best_fitting(ready, pool)) is not None:
            key = heapq.heappop(ready[units])[2]
            placement = pool.place(units)
            assert placement is not None
            pool.take(placement, +1)
            heapq.heappush(running, (now + by_key[key].seconds, key, placement))
        if not running:
            break
        now, key, placement = heapq.heappop(running)
        pool.take(placement, -1)
        for child in children[key]:
            waiting[child] -= 1
            if waiting[child] == 0:
                make_ready(child)
    held = sum(demand[n.key] / GRID * n.seconds for n in nodes)
    return Simulation(now, held, max(priority.values(), default=0.0), devices)

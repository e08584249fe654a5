"""What `w2s-ray plan` prints: jobs grouped with their requests and estimated hours, the
makespan on N devices (as planned, and with whole GPUs for comparison), and jobs that
would not fit one GPU."""

from __future__ import annotations

from rich.table import Table

from w2s_ray.study.estimate import JobCost, describe_resources
from w2s_ray.study.graph import Job
from w2s_ray.study.makespan import Simulation, simulate
from w2s_ray.study.resolve import Study
from w2s_ray.study.scheduler import Node
from w2s_ray.study.status import format_duration

GIB = 1024**3


def plan_table(study: Study, jobs: list[Job], costs: dict[str, JobCost], unit: str) -> Table:
    """Jobs grouped by stage, model, method and request: GPU memory, FLOPs and hours."""
    table = Table(title=f"{study.spec.name}: jobs by stage (nothing is run)")
    numbers = ("jobs", "GPU GiB", "PFLOP", "per job", f"{unit}-h")
    for column in ("stage", "model", "method", "jobs", "request per job", *numbers[1:]):
        table.add_column(column, justify="right" if column in numbers else "left")
    groups: dict[tuple[str, str, str, str], list[JobCost]] = {}
    for job in jobs:
        cost = costs[job.job_id]
        key = (_stage(job), job.model, job.method or "-", describe_resources(cost.resources))
        groups.setdefault(key, []).append(cost)
    for (stage, model, method, request), group in groups.items():
        memory = [c.gpu_bytes for c in group if c.gpu_bytes is not None]
        table.add_row(
            stage,
            model,
            method,
            str(len(group)),
            request,
            f"{max(memory) / GIB:.1f}" if memory else "-",
            f"{sum(c.flops for c in group) / 1e15:.3g}",
            _short(sum(c.seconds for c in group) / len(group)),
            f"{sum(c.device_seconds(unit) for c in group) / 3600:.3g}",
        )
    every = list(costs.values())
    flops = sum(c.flops for c in every) / 1e15
    held = sum(c.device_seconds(unit) for c in every) / 3600
    table.add_row("total", "", "", str(len(every)), "", "", f"{flops:.3g}", "", f"{held:.3g}")
    return table


def _stage(job: Job) -> str:
    """A sharded job's two halves apart: the shards' forwards, then the parent's merge."""
    if job.shard is not None:
        return f"{job.stage} shard"
    return f"{job.stage} merge" if job.shards else job.stage


def _short(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)


def _nodes(jobs: list[Job], costs: dict[str, JobCost], whole_gpus: bool) -> list[Node]:
    nodes = []
    for job in jobs:
        cost = costs[job.job_id]
        resources = dict(cost.resources)
        if whole_gpus and 0 < resources.get("GPU", 0.0) < 1:
            resources["GPU"] = 1.0
        nodes.append(Node(job.job_id, job.deps, resources, cost.seconds))
    return nodes


def _describe(sim: Simulation, unit: str, how: str) -> str:
    n = sim.devices
    return (
        f"on {n} {unit}s, {how}: makespan {format_duration(sim.makespan)}; lower bound "
        f"{format_duration(sim.lower_bound)} (critical path {format_duration(sim.critical_path)}"
        f", {unit}-hours / {n} = {format_duration(sim.device_seconds / n)}); "
        f"jobs hold {sim.device_seconds / 3600:.3g} of the {sim.makespan * n / 3600:.3g} "
        f"{unit}-hours the cluster spends"
    )


def schedule_lines(
    study: Study, jobs: list[Job], costs: dict[str, JobCost], unit: str, devices: int
) -> list[str]:
    """How the hours were estimated, then the simulated makespan on `devices`."""
    settings = study.spec.resources
    lines = [
        "hours: estimated from the throughput measured in docs/benchmarks.md (an H100; the "
        f"CPU rows for CPU work), random batches padded to ~80% of max_length "
        f"({_max_lengths(study)}) and the n_train/n_test caps (w2s_ray/study/cost.py)"
    ]
    if not any(c.resources.get(unit, 0) > 0 for c in costs.values()):
        lines.append(
            f"no job asks for a {unit}: the models' cards ask for CPUs only — "
            "`--cpu-only --devices N` simulates the study on N CPUs"
        )
        return lines
    lines.append(_describe(simulate(_nodes(jobs, costs, False), devices, unit), unit, "planned"))
    if unit == "GPU" and any(0 < c.resources.get("GPU", 0) < 1 for c in costs.values()):
        whole = simulate(_nodes(jobs, costs, True), devices, unit)
        lines.append(_describe(whole, unit, "whole GPUs (resources.jobs_per_gpu: 1)"))
        lines.append(
            f"planned: up to {settings.jobs_per_gpu} jobs share a GPU, each asking for its "
            f"estimated memory's share of {settings.gpu_memory_gb:g} GiB (study key `resources`)"
        )
    return lines


def memory_warnings(study: Study, jobs: list[Job], costs: dict[str, JobCost]) -> list[str]:
    """Models whose estimated memory alone exceeds one GPU: they would run out there."""
    limit = study.spec.resources.gpu_memory_gb
    over: dict[tuple[str, int], float] = {}
    for job in jobs:
        need = costs[job.job_id].gpu_bytes
        if need is not None and need > limit * GIB:
            key = (job.model, study.max_length(job.dataset))
            over[key] = max(over.get(key, 0.0), need)
    return [
        f"{model} at {length} tokens is estimated to need {need / GIB:.0f} GiB, more than "
        f"one {limit:g} GiB GPU — lower train.batch_size or train.max_length (or set "
        "resources.gpu_memory_gb, if the GPUs hold more)"
        for (model, length), need in sorted(over.items())
    ]


def _max_lengths(study: Study) -> str:
    lengths = sorted({study.max_length(name) for name in study.spec.dataset_names()})
    if len(lengths) == 1:
        return f"{lengths[0]} tokens"
    return f"{lengths[0]}–{lengths[-1]} tokens by dataset, see `w2s-ray list datasets`"

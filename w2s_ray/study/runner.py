"""The driver: validate, prepare, run the stages in order, then write tables and figures."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import ray
import yaml
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from analysis.schema import DATA_COUNTS_SCHEMA
from w2s_ray.errors import UserError
from w2s_ray.spec import StudySpec, parse_spec
from w2s_ray.study.graph import row_of
from w2s_ray.study.heartbeat import Heartbeat, other_driver
from w2s_ray.study.inference_check import check_vllm_takes_every_model
from w2s_ray.study.integrity import send_back_broken_jobs
from w2s_ray.study.plan import Job, Study, plan_jobs, resolve
from w2s_ray.study.scheduler import Node
from w2s_ray.study.scheduling import schedule
from w2s_ray.study.sharding import settled, shard_record
from w2s_ray.study.store import StudyStore, results_frame
from w2s_ray.study.tracking import Tracking, check_destinations
from w2s_ray.study.writes import (
    StudyWriteError,
    check_writable,
    is_write_failure,
    write_failure,
)

UPSTREAM_FAILED = "not run: an upstream job failed"
STATES = ("done", "running", "failed", "pending")


@dataclass
class StageProgress:
    """Job states per stage (its shards on a row of their own), updated by the scheduler's
    events and drawn by the live display."""

    jobs: dict[str, list[Job]]
    state: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(init=False)
    stage_of: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        # counted as events arrive: a study of thousands of jobs redraws in constant time;
        # shards get rows of their own ("label shards"), so a stage counts its results
        self.stage_of = {
            j.job_id: row_of(stage, j.shard is not None)
            for stage, jobs in self.jobs.items()
            for j in jobs
        }
        self.counts = {}
        for row in self.stage_of.values():
            self.counts.setdefault(row, dict.fromkeys(STATES, 0))["pending"] += 1

    def set(self, job_id: str, status: str) -> None:
        counts = self.counts[self.stage_of[job_id]]
        counts[self.state.get(job_id, "pending")] -= 1
        counts[status] += 1
        self.state[job_id] = status

    def table(self) -> Table:
        table = Table(title="w2s-ray study progress")
        for column in ("stage", *STATES):
            table.add_column(column, justify="right" if column != "stage" else "left")
        for row, counts in self.counts.items():
            table.add_row(row, *(str(counts[s]) for s in STATES))
        return table

    def __rich__(self) -> Table:  # the live display redraws from this at its own pace
        return self.table()


@dataclass
class StudyOutcome:
    study_dir: Path | str  # a local directory, or the URI of a remote one
    results: pl.DataFrame
    pgr: pl.DataFrame
    failures: dict[str, str]
    report_error: str | None = None  # the report failed; results and tables are safe
    # every failure is the input's (a diverging loss, a bad file), none a crash: exit 2
    failures_are_users: bool = False


def prepare(study: Study, console: Console) -> list[dict[str, object]]:
    """Fetch assets and check every dataset split in the driver, before Ray spends anything;
    returns what each split holds and what was cut or left out (data.parquet's rows)."""
    from w2s_ray.study.data_prep import data_counts, splits_for

    for name, card in study.cards.items():
        path = card.resolve_path()
        for dataset in study.spec.dataset_names():
            check_context(name, card.context, study.max_length(dataset))
        console.print(f"[dim]model {name}: {path}[/dim]")
    rows: list[dict[str, object]] = []
    for dataset in study.spec.dataset_names():
        for seed in study.spec.seeds:
            splits = splits_for(study, dataset, seed)
        counts = data_counts(study, dataset)
        rows += counts
        revision = study.dataset_revisions.get(dataset)
        at = f" @ {revision}" if revision else ""
        console.print(
            f"[dim]dataset {dataset}{at}: {len(splits.weak_train)} weak-train, "
            f"{len(splits.student_train)} student-train, {len(splits.test)} test; inputs up "
            f"to {study.max_length(dataset)} tokens[/dim]"
        )
        for line in describe_counts(counts):
            console.print(f"[yellow]dataset {dataset}: {line}[/yellow]")
    return rows


def describe_counts(counts: list[dict[str, object]]) -> list[str]:
    """A sentence per thing worth knowing about a dataset's splits: what was cut, dropped,
    or fewer than asked for."""
    lines = []
    for row in counts:
        split, used = row["split"], row["n_used"]
        requested = row["n_requested"]
        if isinstance(requested, int) and isinstance(used, int) and requested > used:
            key = "n_train" if split == "pool" else "n_test"
            lines.append(
                f"data.{key} asks for {requested} {split} examples; {used} are used (the "
                f"dataset offers {row['n_available']}"
                f"{', balanced by class' if requested <= row['n_available'] else ''})"  # type: ignore[operator]
            )
        if row["n_cut"]:
            lines.append(
                f"{row['n_cut']} of {used} {split} inputs are longer than {row['max_length']} "
                "tokens for some model; each keeps its last tokens (data.too_long: keep_end)"
            )
        for reason, text in (
            ("n_dropped_too_long", f"longer than {row['max_length']} tokens (data.too_long)"),
            ("n_dropped_straddling", "related to a test example (same group)"),
            ("n_dropped_conflicting", "identical after the cut to one with the other label"),
        ):
            if row[reason]:
                what = "left out of training" if reason == "n_dropped_conflicting" else "dropped"
                lines.append(f"{row[reason]} {split} examples {what}: {text}")
    return lines


def check_context(name: str, context: int | None, max_length: int) -> None:
    """`train.max_length` beyond a model's position embeddings would fail in every job. The
    card knows its context (registered models; a local folder's from its config); a config
    that names none is checked when the model loads."""
    if context is not None and context < max_length:
        raise UserError(
            f"key 'train.max_length': {max_length} tokens do not fit model '{name}', whose "
            f"context is {context} — set train.max_length to {context} or less (longer "
            "inputs keep their last tokens)"
        )


def plan_record(study: Study, stages: dict[str, list[Job]], nodes: list[Node]) -> dict[str, object]:
    """What `status` needs to know of the plan, readable without any registry or Ray: each
    job's request and estimate as the scheduler got them (`status` scales the estimates to
    tell the time left)."""
    from w2s_ray.study.inputs import study_record

    scheduled = {node.key: node for node in nodes}
    return {
        "study": study.spec.name,
        "inputs": study_record(study),  # each model's and dataset's revision or digest
        "stages": {
            stage: [
                {
                    "job_id": job.job_id,
                    "title": job.title,
                    "deps": list(job.deps),
                    "resources": dict(scheduled[job.job_id].resources),
                    "seconds": round(scheduled[job.job_id].seconds, 3),
                    **shard_record(job),
                }
                for job in jobs
            ]
            for stage, jobs in stages.items()
        },
    }


def check_study_dir(store: StudyStore, spec: StudySpec) -> None:
    """A directory holding a different study is refused rather than silently mixed.

    The specs are compared parsed, so a key that a newer w2s-ray adds with its default
    does not make an older study directory look foreign.
    """
    existing = store.read_bytes("study.yaml")
    if existing is not None and not _same_spec(existing, spec):
        raise UserError(
            f"'{store.location}' already holds a different study (its study.yaml differs). "
            "Use --study-dir to pick a new directory, or delete the old one"
        )


def _same_spec(existing: bytes, spec: StudySpec) -> bool:
    """Equal but for `resources:` and `tracking:` (how jobs share devices, and where their
    metrics are also sent, change no number: a resumed study may pack differently, e.g. on
    another cluster, and may start or stop tracking)."""
    try:
        before = parse_spec(yaml.safe_load(existing.decode()))
    except (UserError, yaml.YAMLError, UnicodeDecodeError):
        return False
    ignored = {"resources": spec.resources, "tracking": spec.tracking}
    return before.model_copy(update=ignored) == spec


def check_not_running(store: StudyStore) -> None:
    driver = store.read_driver()
    if other_driver(driver):
        assert driver is not None
        raise UserError(
            f"'{store.location}' is being run right now by another driver (pid "
            f"{driver.get('pid')} on {driver.get('host')}) — follow it with `w2s-ray status "
            f"{store.location}`, or stop that driver before resuming"
        )


def run_study(
    spec: StudySpec,
    study_dir: str | Path,
    *,
    address: str | None = None,
    console: Console | None = None,
    num_cpus: int | None = None,
) -> StudyOutcome:
    console = console or Console()
    store = StudyStore(study_dir)
    try:
        return _run_study(spec, store, address, console, num_cpus)
    except OSError as exc:
        if is_write_failure(exc, store):
            raise write_failure(exc, store) from None
        raise


def _run_study(
    spec: StudySpec,
    store: StudyStore,
    address: str | None,
    console: Console,
    num_cpus: int | None,
) -> StudyOutcome:
    # Ray workers run in directories of their own: the store makes a relative path
    # absolute, or every job's files would land there instead of here.
    study = resolve(spec)
    check_study_dir(store, spec)
    check_not_running(store)
    check_writable(store)  # a read-only or full directory is refused before any compute
    check_destinations(spec.tracking, store)
    from w2s_ray.study.job_task import StudyExecutor
    from w2s_ray.study.ray_session import start_ray
    from w2s_ray.study.scheduler import Scheduler

    data_rows = prepare(study, console)  # data and model problems surface before Ray starts
    stages = plan_jobs(study)
    every_job = [job for jobs in stages.values() for job in jobs]
    check_vllm_takes_every_model(study, every_job)
    start_ray(address, num_cpus=num_cpus)  # a wrong --address fails here, before any file
    store.write_bytes("study.yaml", spec.to_yaml().encode())
    store.write_parquet("data.parquet", pl.DataFrame(data_rows, schema=DATA_COUNTS_SCHEMA))
    cluster = {k: float(v) for k, v in ray.cluster_resources().items()}
    nodes = schedule(study, every_job, cluster)
    store.write_plan(plan_record(study, stages, nodes))
    sees_cache = not (address or "").startswith("ray://")  # a Ray Client's cache is its own
    for note in send_back_broken_jobs(every_job, study, store, sees_cache):
        console.print(f"[yellow]{note}[/yellow]")
    executor = StudyExecutor(study, store.location)
    progress = StageProgress(stages)
    # a done parent's shards count as done: they never run (nor after an unsharded run)
    done = settled(every_job, {job.job_id for job in every_job if store.is_done(job.job_id)})
    for job_id in done:
        progress.set(job_id, "done")
    warn = lambda line: console.print(f"[yellow]{escape(line)}")  # noqa: E731
    tracking = Tracking(spec, store, every_job, warn)
    with (
        Heartbeat(store, address, cluster),
        tracking,  # left after the live table: what it could not send is said below it
        Live(progress, console=console, refresh_per_second=2, transient=False) as live,
    ):
        tracking.catch_up(done)  # jobs that finished while no driver was tracking
        scheduler = Scheduler(nodes, executor, done=done, on_event=tracking.listen(progress.set))
        scheduler.run()
        live.refresh()
    for job_id, error in scheduler.failures.items():
        # a job whose task was lost (its worker or node died more often than Ray retries)
        # has no error.json of its own: its worker never lived to write one
        with contextlib.suppress(OSError):  # on a full disk the record may not fit either
            store.write_error(job_id, error)
    console.line()  # a piped log would otherwise glue the next table to this one's last line
    if scheduler.stopped is not None:
        # a job could not write its files: every later job would fail alike, so the study
        # stops with that job's message rather than train on into a full disk
        raise StudyWriteError(scheduler.stopped.message)
    check_writable(store)
    return finish(stages, store)


def finish(stages: dict[str, list[Job]], store: StudyStore) -> StudyOutcome:
    """Build the tables and figures from the result files (also for a partial study): each
    result is read once, and the report gets what was read."""
    from analysis.pgr import compute_pgr

    jobs = [j for staged in stages.values() for j in staged]
    found = {job.job_id: store.read_result(job.job_id) for job in jobs}
    done = settled(jobs, {job_id for job_id, result in found.items() if result is not None})
    results = results_frame(found.values())
    pgr = compute_pgr(results)
    store.write_parquet("results.parquet", results)
    store.write_parquet("pgr.parquet", pgr)
    report_error = _write_report(store, found)
    failures, crashed = {}, False
    for job in jobs:
        if job.job_id not in done:
            error = store.read_error(job.job_id)
            if error is None and job.shard is not None:
                continue  # its parent is listed: a shard is named only for its own error
            failures[job.title] = error.line if error is not None else UPSTREAM_FAILED
            crashed = crashed or (error is not None and error.kind == "crash")
    where = store.root if store.is_local else store.location
    users = bool(failures) and not crashed and any(e != UPSTREAM_FAILED for e in failures.values())
    return StudyOutcome(where, results, pgr, failures, report_error, users)


def _write_report(store: StudyStore, found: dict[str, dict[str, object] | None]) -> str | None:
    """The report is derived from files already written: if it fails, nothing computed is
    lost, and `w2s-ray report DIR` rebuilds it once the cause is fixed."""
    from w2s_ray.study.reporting import write_report

    try:
        write_report(store, running=False, found=found)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

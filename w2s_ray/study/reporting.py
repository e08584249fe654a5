"""`w2s-ray report`: read a study's files (finished, running or stopped), hand the results table
to `analysis`, and write report.md, report.html, figures/ and the report's tables back.

Results come from the jobs' result files, not results.parquet, so a running study reports
what has finished so far, and the planned jobs without a result are listed by name. The
study's `data.parquet` (examples per dataset and split, and what length limits cut or dropped)
gives the report its Data section when the study wrote one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import polars as pl

from analysis.report import MissingJob
from w2s_ray.errors import UserError
from w2s_ray.study.heartbeat import is_alive
from w2s_ray.study.status import job_state
from w2s_ray.study.store import StudyStore, results_frame

FIGURE_DIR = "figures"
TABLE_DIR = "analysis"
DATA_COUNTS_FILE = "data.parquet"


@dataclass(frozen=True)
class ReportOptions:
    extrapolate_to: tuple[float, ...] = ()
    reference_method: str | None = None
    seed: int = 0


def _read_plan(store: StudyStore) -> dict[str, Any] | None:
    """The plan; None for a study from before plans were written (reported from its table)."""
    plan = store.read_plan()
    if plan is None and not store.exists("results.parquet"):
        raise UserError(
            f"'{store.location}' has no plan.json, so there is nothing to report yet — pass "
            "the directory `w2s-ray run` wrote (e.g. runs/NAME), or run the study first"
        )
    return plan


def _data_counts(store: StudyStore) -> pl.DataFrame | None:
    """The study's data counts; None when it wrote none (older studies)."""
    data = store.read_bytes(DATA_COUNTS_FILE)
    if data is None:
        return None
    try:
        return pl.read_parquet(io.BytesIO(data))
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise UserError(
            f"'{store.location}/{DATA_COUNTS_FILE}' cannot be read ({exc}); remove it to "
            "report without the Data section"
        ) from None


def _missing(
    store: StudyStore,
    jobs: list[dict[str, Any]],
    found: dict[str, dict[str, Any] | None],
    alive: bool,
) -> list[MissingJob]:
    missing = []
    for job in jobs:
        job_id = str(job["job_id"])
        if found[job_id] is not None:
            continue
        state, _ = job_state(store, job_id, None, alive)
        if "shard" in job and state != "failed":
            continue  # a slice of its parent's work: its parent is the result, listed itself
        error = ""
        if state == "failed":
            record = store.read_error(job_id)
            error = record.line if record is not None else "unknown error"
        missing.append(MissingJob(str(job["stage"]), str(job["title"]), state, error))
    return missing


def write_report(
    store: StudyStore,
    options: ReportOptions = ReportOptions(),
    *,
    running: bool | None = None,
    found: dict[str, dict[str, Any] | None] | None = None,
) -> list[str]:
    """Build and write the report; returns the written paths relative to the study.

    Each job's result is read once, for the table and for the list of what is missing;
    the driver, which has just read them all, hands them over as `found` (by job id).
    """
    from analysis.figures import figure_files
    from analysis.render import frames, to_html, to_markdown
    from analysis.report import build_report

    plan = _read_plan(store)
    if running is None:
        running = is_alive(store.read_driver())
    if plan is None:
        jobs: list[dict[str, Any]] = []
        found = {}
        results = pl.read_parquet(io.BytesIO(store.read_bytes("results.parquet") or b""))
        name = store.location.rstrip("/").rsplit("/", 1)[-1]
    else:
        jobs = [
            {**job, "stage": stage} for stage, staged in plan["stages"].items() for job in staged
        ]
        if found is None:
            found = {str(job["job_id"]): store.read_result(str(job["job_id"])) for job in jobs}
        results = results_frame(found.values())
        name = str(plan.get("study", "study"))
    try:
        report = build_report(
            name,
            results,
            missing=_missing(store, jobs, found, running),
            running=running,
            jobs_planned=sum("shard" not in job for job in jobs),
            extrapolate_to=list(options.extrapolate_to),
            reference_method=options.reference_method,
            seed=options.seed,
            data_counts=_data_counts(store),
        )
    except ValueError as exc:  # e.g. a reference method the study does not have
        raise UserError(f"report for '{store.location}': {exc}") from None
    files, captions = figure_files(results, report.pgr) if report.pgr.height else ({}, {})
    for file_name, data in files.items():
        store.write_bytes(f"{FIGURE_DIR}/{file_name}", data)
    for stem, frame in frames(report).items():
        store.write_parquet(f"{TABLE_DIR}/{stem}.parquet", frame)
    pngs = {stem: files[f"{stem}.png"] for stem in captions}
    store.write_bytes("report.md", to_markdown(report, captions, FIGURE_DIR).encode())
    store.write_bytes("report.html", to_html(report, captions, pngs).encode())
    written = [f"{FIGURE_DIR}/{n}" for n in files]
    written += [f"{TABLE_DIR}/{stem}.parquet" for stem in frames(report)]
    return [*written, "report.md", "report.html"]

"""`w2s-ray report`: read a study's files (finished, running or stopped), hand the results table
to `analysis`, and write report.md, report.html, figures/ and the report's tables back.

Results come from the jobs' result files, not results.parquet, so a running study reports
what has finished so far, and the planned jobs without a result are listed by name.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import polars as pl
from matplotlib.figure import Figure

from w2s_ray.errors import UserError
from w2s_ray.study.heartbeat import is_alive
from w2s_ray.study.status import job_state
from w2s_ray.study.store import StudyStore

FIGURE_DIR = "figures"
TABLE_DIR = "analysis"


@dataclass(frozen=True)
class ReportOptions:
    extrapolate_to: tuple[float, ...] = ()
    reference_method: str | None = None
    seed: int = 0


def _planned_jobs(store: StudyStore, where: str) -> list[dict[str, object]]:
    """The plan's jobs; a study from before plans were written reports from its table alone."""
    plan = store.read_plan()
    if plan is None and store.exists("results.parquet"):
        return []
    if plan is None:
        raise UserError(
            f"'{where}' has no plan.json, so there is nothing to report yet — pass the "
            "directory `w2s-ray run` wrote (e.g. runs/NAME), or run the study first"
        )
    return [{**job, "stage": stage} for stage, jobs in plan["stages"].items() for job in jobs]


def _missing(store: StudyStore, jobs: list[dict[str, object]], alive: bool) -> list:
    from analysis.report import MissingJob

    missing = []
    for job in jobs:
        job_id = str(job["job_id"])
        if store.read_result(job_id) is not None:
            continue
        state, _ = job_state(store, job_id, None, alive)
        error = ""
        if state == "failed":
            lines = (store.read_error(job_id) or "").strip().splitlines()
            error = lines[0] if lines else "unknown error"
        missing.append(MissingJob(str(job["stage"]), str(job["title"]), state, error))
    return missing


def _figure_bytes(fig: Figure, fmt: str) -> bytes:
    from analysis.figures.style import DPI

    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI)
    return buffer.getvalue()


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def write_report(
    store: StudyStore,
    options: ReportOptions = ReportOptions(),
    *,
    results: pl.DataFrame | None = None,
    running: bool | None = None,
) -> list[str]:
    """Build and write the report; returns the written paths relative to the study."""
    from analysis.figures import build_figures
    from analysis.render import frames, to_html, to_markdown
    from analysis.report import build_report

    where = str(store.location)
    jobs = _planned_jobs(store, where)
    if running is None:
        running = is_alive(store.read_driver())
    plan = store.read_plan() or {}
    if results is None and not plan:
        results = pl.read_parquet(io.BytesIO(store.read_bytes("results.parquet") or b""))
    elif results is None:
        results = store.results_table([str(job["job_id"]) for job in jobs])
    try:
        report = build_report(
            str(plan.get("study", store.location.rstrip("/").rsplit("/", 1)[-1])),
            results,
            missing=_missing(store, jobs, running),
            running=running,
            jobs_planned=len(jobs),
            extrapolate_to=list(options.extrapolate_to),
            reference_method=options.reference_method,
            seed=options.seed,
        )
    except ValueError as exc:  # e.g. a reference method the study does not have
        raise UserError(f"report for '{where}': {exc}") from None
    written: list[str] = []
    figures = build_figures(results, report.pgr) if report.pgr.height else {}
    pngs = {}
    for stem, (fig, _) in figures.items():
        pngs[stem] = _figure_bytes(fig, "png")
        for fmt, data in (("png", pngs[stem]), ("svg", _figure_bytes(fig, "svg"))):
            store.write_bytes(f"{FIGURE_DIR}/{stem}.{fmt}", data)
            written.append(f"{FIGURE_DIR}/{stem}.{fmt}")
    captions = {stem: caption for stem, (_, caption) in figures.items()}
    for stem, frame in frames(report).items():
        store.write_bytes(f"{TABLE_DIR}/{stem}.parquet", _parquet_bytes(frame))
        written.append(f"{TABLE_DIR}/{stem}.parquet")
    store.write_bytes("report.md", to_markdown(report, captions, FIGURE_DIR).encode())
    store.write_bytes("report.html", to_html(report, captions, pngs).encode())
    return [*written, "report.md", "report.html"]

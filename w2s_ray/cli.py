"""`w2s-ray run|resume|report|status|plan|submit|list`: the command line.

User errors print one message and exit 2 (a traceback only with --debug).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from w2s_ray.errors import UserError
from w2s_ray.spec import StudySpec

if TYPE_CHECKING:
    from w2s_ray.study.plan import Study
    from w2s_ray.study.runner import StudyOutcome

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Weak-to-strong generalization scaling studies on Ray.",
)
# Piped output (CI logs, `| tee`) gets room for the PGR table instead of rich's 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=170)
err_console = Console(stderr=True, soft_wrap=True)  # one error, one line


def pgr_table(intervals: object) -> Table:
    from analysis.render import pgr_cells

    headers, rows = pgr_cells(intervals)  # type: ignore[arg-type]
    table = Table(title="Performance gap recovered (mean over seeds, 95% CI)")
    for column in headers:
        left = column in {"dataset", "weak → strong", "method"}
        table.add_column(column, justify="left" if left else "right")
    for row in rows:
        table.add_row(*row)
    return table


# Shared by `run` and `resume`: where the study's Ray comes from.
AddressOption = Annotated[
    str | None, typer.Option(help="attach to a Ray cluster, e.g. ray://HEAD:10001 or auto")
]
NumCpusOption = Annotated[int | None, typer.Option(help="CPUs for a local Ray (default: all)")]


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="study YAML, e.g. studies/quickstart.yaml")],
    study_dir: Annotated[
        str | None,
        typer.Option(help="where results go: a directory or s3:// / gs:// URI (default runs/NAME)"),
    ] = None,
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
) -> None:
    """Run a study (skipping jobs already finished) and print its PGR table."""
    spec = _checked_spec(study)
    _run_and_report(spec, study_dir or f"runs/{spec.name}", address, num_cpus)


def _checked_spec(study: Path) -> StudySpec:
    """The study file parsed and its names resolved, before Ray starts or anything downloads."""
    from w2s_ray.spec import load_spec

    spec = load_spec(study)
    _check_names(spec, str(study))
    return spec


def _check_names(spec: StudySpec, source: str) -> None:
    _resolved(spec, source)


def _resolved(spec: StudySpec, source: str) -> Study:
    """The spec with its names resolved; an error names the file it came from."""
    from w2s_ray.study.plan import resolve

    try:
        return resolve(spec)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None


def _run_and_report(
    spec: StudySpec, study_dir: str, address: str | None, num_cpus: int | None
) -> None:
    from w2s_ray.study.runner import run_study

    report_outcome(run_study(spec, study_dir, address=address, console=console, num_cpus=num_cpus))


def report_outcome(outcome: StudyOutcome) -> None:
    """The PGR table and where results are; failed jobs, then the exit status: 2 when every
    failure is the input's, 1 when something crashed."""
    from analysis.intervals import pgr_intervals
    from w2s_ray.study.runner import UPSTREAM_FAILED

    if len(outcome.pgr):
        console.print(pgr_table(pgr_intervals(outcome.pgr)))
    console.print(
        f"results: {outcome.study_dir}/results.parquet, pgr.parquet; report: "
        f"{outcome.study_dir}/report.html, report.md, figures/"
    )
    if outcome.report_error:
        err_console.print(
            f"[yellow]the report was not written[/yellow] ({outcome.report_error}); results are "
            f"safe — `w2s-ray report {outcome.study_dir}` retries it"
        )
    if outcome.failures_are_users:
        # the input's fault (a diverging loss, a bad file): one line per distinct cause
        by_error: dict[str, list[str]] = {}
        for title, error in outcome.failures.items():
            if error != UPSTREAM_FAILED:
                by_error.setdefault(error, []).append(title)
        for error, titles in by_error.items():
            err_console.print(
                f"[red]error:[/red] {error} (in {len(titles)} job(s): {'; '.join(titles)}) — "
                "fix it and run the same command again: finished jobs are kept",
                highlight=False,
            )
        raise typer.Exit(2)
    if outcome.failures:
        for title, error in outcome.failures.items():
            err_console.print(f"[red]failed[/red] {title}: {error}")
        err_console.print("Fix the cause and run the same command again: finished jobs are kept.")
        raise typer.Exit(1)


@app.command()
def resume(
    study_dir: Annotated[
        str, typer.Argument(help="a study directory or URI, e.g. runs/quickstart")
    ],
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
) -> None:
    """Finish an interrupted study: finished jobs are kept, fine-tunes resume from checkpoints."""
    from w2s_ray.spec import parse_spec
    from w2s_ray.study.store import StudyStore

    text = StudyStore(study_dir).read_bytes("study.yaml")
    if text is None:
        raise UserError(
            f"'{study_dir}' holds no study.yaml, so there is nothing to resume — start it with "
            "`w2s-ray run STUDY.yaml --study-dir DIR`"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(
            f"'{study_dir}/study.yaml' is damaged (not valid YAML) — restore it, or start the "
            "study again from its study file with `w2s-ray run STUDY.yaml --study-dir DIR`"
        ) from None
    spec = parse_spec(data, f"{study_dir}/study.yaml")
    _check_names(spec, f"{study_dir}/study.yaml")
    _run_and_report(spec, study_dir, address, num_cpus)


@app.command()
def report(
    study_dir: Annotated[
        str, typer.Argument(help="a study directory or URI, e.g. runs/quickstart")
    ],
    extrapolate: Annotated[
        list[float] | None,
        typer.Option(help="also predict each fit at this compute in FLOPs, e.g. 1e24 (repeatable)"),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="method the others are compared with (default: xent)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the resampling behind the intervals")] = 0,
) -> None:
    """Write report.html, report.md, figures/ and analysis/ tables; works while a study runs."""
    from w2s_ray.study.reporting import ReportOptions, write_report
    from w2s_ray.study.store import StudyStore

    for compute in extrapolate or []:
        if not compute > 0:
            raise UserError(f"--extrapolate {compute}: give a positive compute in FLOPs, e.g. 1e24")
    store = StudyStore(study_dir)
    options = ReportOptions(tuple(extrapolate or ()), reference, seed)
    written = write_report(store, options)
    where = store.root if store.is_local else store.location
    figures = sum(path.startswith("figures/") for path in written)
    console.print(f"report: {where}/report.html, {where}/report.md ({figures} figure files)")


@app.command()
def status(
    study_dir: Annotated[
        str, typer.Argument(help="a study directory or URI, e.g. runs/quickstart")
    ],
) -> None:
    """Jobs done / running / failed / pending per stage, from the files alone."""
    from w2s_ray.study.status import format_duration, read_status

    state = read_status(study_dir)
    driver = state.driver or {}
    if state.running:
        header = f"running (driver pid {driver.get('pid')} on {driver.get('host')})"
    elif driver.get("finished_at"):
        header = "not running: its last run finished"
    else:
        header = f"not running: its driver stopped — `w2s-ray resume {study_dir}` continues it"
    console.print(f"[bold]{state.name}[/bold]: {header}")
    table = Table()
    for column in ("stage", "done", "running", "failed", "pending", "est. remaining"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in state.stages:
        pending = str(stage.counts["pending"])
        if stage.interrupted:
            pending += f" ({stage.interrupted} interrupted)"
        table.add_row(
            stage.stage,
            *(str(stage.counts[s]) for s in ("done", "running", "failed")),
            pending,
            format_duration(stage.remaining_seconds),
        )
    console.print(table)
    console.print(
        f"elapsed {format_duration(state.elapsed_seconds)}, estimated remaining "
        f"{format_duration(state.remaining_seconds)}"
    )
    for stage in state.stages:
        for title, error in stage.errors:
            console.print(f"[red]failed[/red] {title}: {error}", highlight=False)


@app.command()
def plan(
    study: Annotated[Path, typer.Argument(help="study YAML, e.g. studies/quickstart.yaml")],
    devices: Annotated[
        int, typer.Option(min=1, help="GPUs (CPUs with --cpu-only) to simulate the run on")
    ] = 8,
    cpu_only: Annotated[
        bool, typer.Option(help="plan for a cluster without GPUs (requests become CPU work)")
    ] = False,
) -> None:
    """Print the jobs, their requests, estimated hours and the makespan on N devices; runs
    nothing."""
    from w2s_ray.spec import load_spec
    from w2s_ray.study.estimate import job_cost
    from w2s_ray.study.plan import plan_jobs
    from w2s_ray.study.plan_summary import memory_warnings, plan_table, schedule_lines

    study_obj = _resolved(load_spec(study), str(study))
    jobs = [job for stage_jobs in plan_jobs(study_obj).values() for job in stage_jobs]
    costs = {job.job_id: job_cost(job, study_obj, gpu_cluster=not cpu_only) for job in jobs}
    unit = "CPU" if cpu_only else "GPU"
    console.print(plan_table(study_obj, jobs, costs, unit))
    for line in schedule_lines(study_obj, jobs, costs, unit, devices):
        console.print(line, highlight=False)
    for line in memory_warnings(study_obj, jobs, costs):
        err_console.print(f"[yellow]warning:[/yellow] {line}", highlight=False)


@app.command()
def submit(
    study: Annotated[Path, typer.Argument(help="study YAML, e.g. studies/quickstart.yaml")],
    address: Annotated[
        str, typer.Option(help="the cluster's Ray dashboard / Jobs address, http://HEAD:8265")
    ],
    study_dir: Annotated[
        str | None,
        typer.Option(help="study directory on the cluster (default ~/w2s-ray/runs/NAME)"),
    ] = None,
) -> None:
    """Send a study to a Ray cluster as a Ray Job; prints its id and how to follow it."""
    from w2s_ray.study.submit import default_study_dir, submit_study

    spec = _checked_spec(study)
    target = study_dir or default_study_dir(spec)
    job_id = submit_study(spec, address, target)
    console.print(f"submitted {spec.name} as Ray Job [bold]{job_id}[/bold]", highlight=False)
    console.print(
        f"follow it:  ray job logs --follow {job_id} --address {address}", highlight=False
    )
    console.print(f"its state:  ray job status {job_id} --address {address}", highlight=False)
    console.print(
        f"its jobs:   w2s-ray status {target}   (on a machine that sees that directory)",
        highlight=False,
    )


@app.command("list")
def list_entries(
    what: Annotated[
        str, typer.Argument(help="models | datasets | prompts | losses | assets | backends")
    ],
) -> None:
    """Print what the registries hold, one entry a line."""
    from w2s_ray.assets import ASSETS
    from w2s_ray.datasets import DATASETS
    from w2s_ray.models import MODELS
    from w2s_ray.registry import suggest
    from w2s_ray.train.losses import LOSSES

    if what == "models":
        for name, card in MODELS.items():
            print(
                f"{name}\t{card.params / 1e6:.1f}M params\t{card.effective_compute:.2e} FLOPs"
                f"\t{card.source}"
            )
    elif what == "datasets":
        for name, dataset in DATASETS.items():
            print(
                f"{name}\t{dataset.description}\tmax_length {dataset.max_length}\t{dataset.source}"
            )
    elif what == "prompts":
        # What the zero/few-shot baselines ask of each task, and the answer for label 0 / 1.
        for name, dataset in DATASETS.items():
            if dataset.prompt is None:
                continue  # generative: scored by generation, never prompted with choices
            fmt = dataset.prompt
            answers = " | ".join(f"{label}:{word!r}" for label, word in enumerate(fmt.choices))
            print(f"{name}\t{fmt.instruction}\t{fmt.answer_prefix} {answers}")
    elif what == "losses":
        for name, loss in LOSSES.items():
            print(f"{name}\t{loss.description}\toptions: {loss.defaults or 'none'}")
    elif what == "assets":
        for name, asset in ASSETS.items():
            print(f"{name}\t{asset.description}\t{asset.license}")
    elif what == "backends":
        from w2s_ray.infer.backend import BACKEND_NAMES, resolve_backend_name

        for name, backend in BACKEND_NAMES.items():
            here = f"-> {resolve_backend_name(name)} here" if name == "auto" else None
            usable = here or ("usable here" if backend.available() else "not usable here")
            print(f"{name}\t{backend.description}\t{usable}")
    else:
        kinds = ["models", "datasets", "prompts", "losses", "assets", "backends"]
        raise UserError(
            f"cannot list '{what}'{suggest(what, kinds)}; choose one of {', '.join(kinds)}"
        )


def main() -> None:
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    # Before transformers or Ray start: workers inherit these, keeping the live display clean.
    for name, value in (
        ("TOKENIZERS_PARALLELISM", "false"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
    ):
        os.environ.setdefault(name, value)
    try:
        app()
    except UserError as exc:
        if debug:
            raise
        # escaped: a fix such as `pip install 'w2s-ray[wandb]'` is not rich markup
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()

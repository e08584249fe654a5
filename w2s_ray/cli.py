"""`w2s-ray run|list|report`: the command line. User errors print one message and exit 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from w2s_ray.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Weak-to-strong generalization scaling studies on Ray.",
)
# Piped output (CI logs, `| tee`) gets room for the PGR table instead of rich's 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=140)
err_console = Console(stderr=True, soft_wrap=True)  # one error, one line


def pgr_table(summary: object) -> Table:
    table = Table(title="Performance gap recovered (mean over seeds)")
    for column in (
        "dataset",
        "weak → strong",
        "method",
        "weak acc",
        "ceiling acc",
        "student acc",
        "PGR",
        "seeds",
    ):
        table.add_column(
            column, justify="left" if column in {"dataset", "weak → strong", "method"} else "right"
        )
    for row in summary.iter_rows(named=True):  # type: ignore[attr-defined]
        pgr = row["pgr_mean"]
        table.add_row(
            row["dataset"],
            f"{row['weak_model']} → {row['strong_model']}",
            row["method"],
            f"{row['weak_accuracy_mean']:.3f}",
            f"{row['ceiling_accuracy_mean']:.3f}",
            f"{row['student_accuracy_mean']:.3f}",
            "undefined" if pgr is None else f"{pgr:+.2f}",
            f"{row['n_defined']}/{row['n_seeds']}",
        )
    return table


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="study YAML, e.g. studies/quickstart.yaml")],
    study_dir: Annotated[
        Path | None, typer.Option(help="where results go (default runs/NAME)")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="attach to a Ray cluster, e.g. ray://HEAD:10001 or auto")
    ] = None,
    num_cpus: Annotated[
        int | None, typer.Option(help="CPUs for a local Ray (default: all)")
    ] = None,
) -> None:
    """Run a study (skipping jobs already finished) and print its PGR table."""
    from analysis.pgr import summarize_pgr
    from w2s_ray.spec import load_spec
    from w2s_ray.study.plan import resolve
    from w2s_ray.study.runner import run_study

    spec = load_spec(study)
    try:
        resolve(spec)  # names and ladder order, before Ray starts or anything downloads
    except UserError as exc:
        raise UserError(f"{study}: {exc}") from None
    outcome = run_study(
        spec,
        study_dir or Path("runs") / spec.name,
        address=address,
        console=console,
        num_cpus=num_cpus,
    )
    if len(outcome.pgr):
        console.print(pgr_table(summarize_pgr(outcome.pgr)))
    console.print(f"results: {outcome.study_dir}/results.parquet, pgr.parquet, figures/")
    if outcome.failures:
        for title, error in outcome.failures.items():
            err_console.print(f"[red]failed[/red] {title}: {error}")
        err_console.print("Fix the cause and run the same command again: finished jobs are kept.")
        raise typer.Exit(1)


@app.command("list")
def list_entries(
    what: Annotated[str, typer.Argument(help="models | datasets | losses | assets")],
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
            print(f"{name}\t{dataset.description}\t{dataset.source}")
    elif what == "losses":
        for name, loss in LOSSES.items():
            print(f"{name}\t{loss.description}\toptions: {loss.defaults or 'none'}")
    elif what == "assets":
        for name, asset in ASSETS.items():
            print(f"{name}\t{asset.description}\t{asset.license}")
    else:
        hint = suggest(what, ["models", "datasets", "losses", "assets"])
        raise UserError(f"cannot list '{what}'{hint}; choose models, datasets, losses or assets")


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
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()

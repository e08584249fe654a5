"""`w2s-ray report` on a study that is still running: it reports what has finished, names
the jobs that have not, and writes figures, tables and both report formats."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analysis.schema import DATA_COUNTS_SCHEMA
from w2s_ray.cli import app
from w2s_ray.study.outcome import JobError
from w2s_ray.study.store import StudyStore

COMPUTE = {"small": 1e15, "medium": 1e16, "large": 1e17}
TRUTH = {0: (0.60, 0.70, 0.80), 1: (0.62, 0.71, 0.84), 2: (0.61, 0.69, 0.82)}


def _result(stage: str, model: str, seed: int, accuracy: float, **extra: object) -> dict:
    weak = extra.get("weak_model")
    return {
        "stage": stage,
        "dataset": "toy",
        "seed": seed,
        "model": model,
        "weak_model": weak,
        "method": extra.get("method"),
        "mode": "probe",
        "test_accuracy": accuracy,
        "test_auroc": 0.5,
        "effective_compute": COMPUTE[model],
        "weak_effective_compute": COMPUTE[weak] if weak else None,
        "n_train": 100,
        "wall_seconds": 1.0,
    }


def _running_study(root: Path) -> StudyStore:
    """Ground truth and xent/logconf students for three seeds; seed 2's small → large logconf
    student is still running and seed 1's has failed."""
    store = StudyStore(root)
    planned: dict[str, list[dict]] = {"ground_truth": [], "student": []}
    for seed, accs in TRUTH.items():
        for model, acc in zip(("small", "medium", "large"), accs, strict=True):
            job_id = f"gt-{model}-{seed}"
            planned["ground_truth"].append({"job_id": job_id, "title": f"gt {model} s{seed}"})
            store.write_result(
                job_id, {"job_id": job_id, **_result("ground_truth", model, seed, acc)}
            )
        for method, lift in (("xent", 0.0), ("logconf", 0.04)):
            job_id = f"st-{method}-{seed}"
            planned["student"].append(
                {"job_id": job_id, "title": f"small → large {method} s{seed}"}
            )
            if method == "logconf" and seed == 2:
                store.mark_started(job_id)
            elif method == "logconf" and seed == 1:
                store.mark_started(job_id)
                store.write_error(
                    job_id, JobError("user", "loss became nan", "", "FloatingPointError")
                )
            else:
                result = _result(
                    "student",
                    "large",
                    seed,
                    0.7 + lift + 0.01 * seed,
                    weak_model="small",
                    method=method,
                )
                store.write_result(job_id, {"job_id": job_id, **result})
    store.write_plan({"study": "demo", "stages": planned})
    now = time.time()
    store.write_driver(
        {
            "pid": 1,
            "host": "h",
            "first_started_at": now - 60,
            "started_at": now - 60,
            "heartbeat_at": now,
            "earlier_seconds": 0.0,
            "finished_at": None,
        }
    )
    return store


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), terminal_width=200)


def _w2s_ray(*args: str) -> subprocess.CompletedProcess[str]:
    """As a user runs it: user errors exit 2 with one line, handled in `main`."""
    command = [sys.executable, "-m", "w2s_ray.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_report_on_a_running_study(tmp_path):
    _running_study(tmp_path)
    out = _invoke("report", str(tmp_path), "--extrapolate", "1e19")
    assert out.exit_code == 0, out.output
    text = (tmp_path / "report.md").read_text()
    assert "**demo** — running: 13 evaluated jobs with results, 2 planned jobs without." in text
    assert "student: small → large logconf s2 — running" in text
    assert (
        "student: small → large logconf s1 — failed (FloatingPointError: loss became nan)" in text
    )
    # the finished numbers, recomputed independently from TRUTH: xent PGR per seed
    per_seed = [(0.7 + 0.01 * s - TRUTH[s][0]) / (TRUTH[s][2] - TRUTH[s][0]) for s in TRUTH]
    intervals = pl.read_parquet(tmp_path / "analysis" / "pgr_intervals.parquet")
    xent = intervals.filter(pl.col("method") == "xent").row(0, named=True)
    assert xent["pgr"] == pytest.approx(sum(per_seed) / 3)
    logconf = intervals.filter(pl.col("method") == "logconf").row(0, named=True)
    assert logconf["n_seeds"] == 1 and logconf["pgr_low"] is None  # one finished seed so far
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"pgr_vs_compute_toy_xent.png", "pgr_vs_compute_toy_xent.svg"} <= figures
    assert "method_comparison_toy.png" in figures
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures) // 2
    assert pl.read_parquet(tmp_path / "analysis" / "extrapolations.parquet").height > 0
    # these results record no misfit: the diagnostics table is written empty, no section
    diagnostics = pl.read_parquet(tmp_path / "analysis" / "diagnostics.parquet")
    assert diagnostics.height == 0 and "misfit" in diagnostics.columns
    assert "## Diagnostics" not in text and not any(f.startswith("diagnostics") for f in figures)


def test_report_errors_name_the_problem_and_the_fix(tmp_path):
    out = _w2s_ray("report", str(tmp_path))
    assert out.returncode == 2 and "no plan.json" in out.stderr and "w2s-ray run" in out.stderr
    _running_study(tmp_path)
    out = _w2s_ray("report", str(tmp_path), "--reference", "bootstrap", "--extrapolate", "0")
    assert out.returncode == 2 and "positive compute in FLOPs" in out.stderr
    out = _w2s_ray("report", str(tmp_path), "--reference", "bootstrap")
    assert out.returncode == 2
    assert "'bootstrap' is not in the results" in out.stderr and "xent" in out.stderr
    assert not (tmp_path / "report.md").exists()


def test_report_before_any_job_finished_lists_the_plan(tmp_path):
    store = StudyStore(tmp_path)
    store.write_plan(
        {"study": "fresh", "stages": {"ground_truth": [{"job_id": "a", "title": "gt a"}]}}
    )
    out = _invoke("report", str(tmp_path))
    assert out.exit_code == 0, out.output
    text = (tmp_path / "report.md").read_text()
    assert "0 evaluated jobs with results, 1 planned jobs without" in text
    assert "- ground_truth: gt a — pending" in text


def test_report_shows_the_data_counts_the_study_wrote(tmp_path):
    store = _running_study(tmp_path)
    counts = pl.DataFrame(
        {
            "dataset": ["toy", "toy"],
            "split": ["pool", "test"],
            "n_available": [300, 90],
            "n_requested": [None, 120],
            "n_used": [296, 90],
            "n_cut": [12, 3],
            "n_dropped_too_long": [0, 0],
            "n_dropped_conflicting": [4, 0],
            "n_dropped_straddling": [0, 0],
            "max_length": [128, 128],
            "too_long": ["keep_end", "keep_end"],
        },
        schema=DATA_COUNTS_SCHEMA,
    )
    store.write_parquet("data.parquet", counts)
    out = _invoke("report", str(tmp_path))
    assert out.exit_code == 0, out.output
    text = (tmp_path / "report.md").read_text()
    assert "| toy | pool | 300 | all | 296 | 12 | 0 | 4 | 0 | 128 | keep_end |" in text
    assert "toy test: 120 examples were requested but only 90 were available" in text
    assert "<h2>Data</h2>" in (tmp_path / "report.html").read_text()

    store.write_bytes("data.parquet", b"not parquet")
    out = _w2s_ray("report", str(tmp_path))
    assert out.returncode == 2 and "data.parquet' cannot be read" in out.stderr

"""A tiny study through real Ray, real transformers models and real parquet files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
import typer
from rich.console import Console

from w2s_ray.cli import report_outcome
from w2s_ray.spec import parse_spec
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.runner import run_study
from w2s_ray.study.store import RESULT_COLUMNS

pytestmark = pytest.mark.slow


def _spec(tiny_models: dict[str, Path], toy_dataset: Path, mode: str, name: str) -> dict:
    return {
        "name": name,
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in tiny_models.items()
        ],
        "seeds": [0, 1],
        "mode": mode,
        "methods": ["xent", {"name": "logconf", "options": {"aux_max": 0.5}}],
        "data": {"n_train": 120, "n_test": 60},
        "train": {
            "epochs": 20,
            "lr": 1e-2 if mode == "probe" else 1e-3,
            "batch_size": 16,
            "max_length": 16,
        },
    }


def _quiet() -> Console:
    return Console(file=io.StringIO())


def test_probe_study_writes_the_output_contract_and_resumes(
    ray_session, tiny_models, toy_dataset, tmp_path
):
    """(That a fresh run reproduces the numbers is checked by test_resume_after_kill and
    test_fault_retry, against a reference run each.)"""
    spec = parse_spec(_spec(tiny_models, toy_dataset, "probe", "tiny-probe"))
    study_dir = tmp_path / "study"
    outcome = run_study(spec, study_dir, console=_quiet())
    assert outcome.failures == {}

    assert (study_dir / "study.yaml").read_text() == spec.to_yaml()
    results = pl.read_parquet(study_dir / "results.parquet")
    assert results.columns == list(RESULT_COLUMNS)
    assert results.group_by("stage").len().sort("stage").rows() == [
        ("ground_truth", 4),
        ("label", 2),
        ("student", 4),
    ]
    gt = results.filter(pl.col("stage") == "ground_truth")
    assert gt["weak_model"].is_null().all()
    assert gt["test_accuracy"].is_between(0, 1).all()
    students = results.filter(pl.col("stage") == "student")
    assert students["agreement_with_weak"].is_between(0, 1).all()
    assert (students["weak_effective_compute"] < students["effective_compute"]).all()

    pgr = pl.read_parquet(study_dir / "pgr.parquet")
    assert pgr.height == 2 * 2  # 1 pair x 2 methods x 2 seeds
    for row in pgr.iter_rows(named=True):
        w, c, s = row["weak_accuracy"], row["ceiling_accuracy"], row["student_accuracy"]
        expected = (s - w) / (c - w) if c > w else None
        assert row["pgr"] == (pytest.approx(expected) if expected is not None else None)
    assert sorted(p.name for p in (study_dir / "figures").glob("*.png"))
    assert outcome.report_error is None  # the run wrote its report from the same files
    report = (study_dir / "report.md").read_text()
    assert "— finished:" in report and "## Methods compared" in report
    assert (study_dir / "report.html").read_text().count("data:image/png;base64,") == len(
        list((study_dir / "figures").glob("*.png"))
    )

    # every job's result.json names its job; running again recomputes nothing
    job_ids = [j.job_id for js in plan_jobs(resolve(spec)).values() for j in js]
    stamps = {}
    for job_id in job_ids:
        path = study_dir / "jobs" / job_id / "result.json"
        assert json.loads(path.read_text())["job_id"] == job_id
        stamps[job_id] = (path.stat().st_mtime_ns, path.read_bytes())
    again = run_study(spec, study_dir, console=_quiet())
    assert again.failures == {}
    for job_id, stamp in stamps.items():
        path = study_dir / "jobs" / job_id / "result.json"
        assert (path.stat().st_mtime_ns, path.read_bytes()) == stamp
    assert again.results.equals(outcome.results)


def test_finetune_study_trains_the_whole_model(ray_session, tiny_models, toy_dataset, tmp_path):
    data = _spec(tiny_models, toy_dataset, "finetune", "tiny-finetune")
    data["seeds"] = [0]
    data["methods"] = ["xent"]
    outcome = run_study(parse_spec(data), tmp_path / "ft", console=_quiet())
    assert outcome.failures == {}
    assert outcome.pgr.height == 1
    gt = outcome.results.filter(pl.col("stage") == "ground_truth")
    # a random tiny BERT learns the word-carried label well above chance
    assert gt["test_accuracy"].max() > 0.7


def test_a_diverging_loss_fails_its_jobs_with_a_clear_message_and_keeps_the_rest(
    ray_session, tiny_models, toy_dataset, tmp_path, monkeypatch, capsys
):
    data = _spec(tiny_models, toy_dataset, "probe", "tiny-diverging")
    data.update(seeds=[0], methods=["xent"])
    data["train"] = {**data["train"], "lr": 1e37, "epochs": 3}
    # a relative study dir (the CLI's default, runs/NAME) must land under the working
    # directory, not in Tune's per-trial working directories
    monkeypatch.chdir(tmp_path)
    outcome = run_study(parse_spec(data), Path("nan"), console=_quiet())
    assert outcome.study_dir == tmp_path / "nan"
    gt_failures = {t: e for t, e in outcome.failures.items() if t.startswith("ground_truth")}
    assert len(gt_failures) == 2
    for error in gt_failures.values():
        assert error.startswith("FloatingPointError: loss became") and "learning rate" in error
    # the features before it are kept, and the failure is recorded as the input's fault
    assert not any(t.startswith("features") for t in outcome.failures)
    error_files = list((tmp_path / "nan" / "jobs").glob("ground_truth-*/error.json"))
    assert len(error_files) == 2
    for path in error_files:
        record = json.loads(path.read_text())
        assert record["kind"] == "user" and record["error_type"] == "FloatingPointError"
        assert record["detail"] == "" and "loss became" in record["message"]
    # the command line: exit 2 (the input's fault), a line per cause naming it and the fix
    assert outcome.failures_are_users
    with pytest.raises(typer.Exit) as stop:
        report_outcome(outcome)
    assert stop.value.exit_code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and all(line.startswith("error: ") for line in lines), lines
    assert all("loss became" in line and "lower the learning rate" in line for line in lines)
    assert sum(line.count("ground_truth") for line in lines) == 2


def test_a_study_directory_given_as_a_uri(ray_session, tiny_models, toy_dataset, tmp_path):
    # file:// goes through the same pyarrow-URI path as s3:// and gs://
    data = _spec(tiny_models, toy_dataset, "probe", "tiny-uri")
    data.update(seeds=[0], methods=["xent"])
    uri = f"file://{tmp_path}/by-uri"
    outcome = run_study(parse_spec(data), uri, console=_quiet())
    assert outcome.failures == {} and outcome.study_dir == tmp_path / "by-uri"  # it is local
    assert (tmp_path / "by-uri" / "results.parquet").exists()
    assert list((tmp_path / "by-uri" / "jobs").glob("student-*/result.json"))
    from w2s_ray.study.status import read_status

    assert [s.counts["done"] for s in read_status(uri).stages] == [2, 2, 1, 1]

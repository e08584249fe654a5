"""A trial that crashes once (an error, or its worker process dying) is retried and resumes;
damaged results, weights, checkpoints and cached labels are found and rebuilt."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from w2s_ray.spec import StudySpec, parse_spec
from w2s_ray.study import artifacts
from w2s_ray.study.runner import StudyOutcome, run_study

pytestmark = pytest.mark.slow

METRICS = ["job_id", "test_accuracy", "test_auroc", "agreement_with_weak"]


def _spec(tiny_models: dict[str, Path], toy_dataset: Path) -> dict:
    return {
        "name": "faulty",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in tiny_models.items()
        ],
        "data": {"n_train": 120, "n_test": 60},
        "train": {"epochs": 5, "lr": 1e-2, "batch_size": 16, "max_length": 16},
    }


@pytest.fixture(scope="module")
def clean_run(ray_session, tiny_models, toy_dataset, tmp_path_factory):
    """The study run once with nothing going wrong: what every drill must end with."""
    spec = parse_spec(_spec(tiny_models, toy_dataset))
    quiet = Console(file=io.StringIO())
    return spec, run_study(spec, tmp_path_factory.mktemp("clean") / "study", console=quiet)


def _same_metrics(got: StudyOutcome, want: StudyOutcome) -> bool:
    return (
        got.results.select(METRICS)
        .sort("job_id")
        .equals(want.results.select(METRICS).sort("job_id"))
    )


def test_crashed_trials_are_retried_from_their_checkpoint_with_the_same_results(
    clean_run: tuple[StudySpec, StudyOutcome], tmp_path
):
    spec, clean = clean_run
    quiet = Console(file=io.StringIO())
    faulty_dir = tmp_path / "faulty"
    faulty_dir.mkdir()
    faults = [
        {"stage": "ground_truth", "action": "exit", "after_epochs": 2, "times": 1},
        {"stage": "student", "action": "raise", "after_epochs": 3, "times": 1},
    ]
    (faulty_dir / "faults.json").write_text(json.dumps(faults))
    outcome = run_study(spec, faulty_dir, console=quiet)

    assert outcome.failures == {}
    assert sorted(p.name for p in (faulty_dir / "faults-fired").iterdir()) == ["0-0", "1-0"]
    attempts = {
        p.parent.name: json.loads(p.read_text())["attempt"]
        for p in faulty_dir.glob("jobs/*/started.json")
    }
    retried = sorted(job for job, n in attempts.items() if n > 1)
    assert len(retried) == 2 and {j.split("-")[0] for j in retried} == {"ground_truth", "student"}
    for job in retried:  # each picked up the checkpoint its fault left behind
        resumes = (faulty_dir / "jobs" / job / "resumes.txt").read_text()
        assert int(resumes.split()[-1]) > 0
    assert _same_metrics(outcome, clean)


def test_damaged_results_weights_checkpoints_and_labels_are_found_and_rebuilt(
    clean_run: tuple[StudySpec, StudyOutcome], tmp_path
):
    spec, clean = clean_run
    study_dir = tmp_path / "study"
    shutil.copytree(clean.study_dir, study_dir)
    jobs = study_dir / "jobs"
    deps = {
        job["job_id"]: job["deps"]
        for stage in json.loads((study_dir / "plan.json").read_text())["stages"].values()
        for job in stage
    }
    reread, retrained = sorted(jobs.glob("ground_truth-*"))[:2]
    # a result cut short: its finished weights are read back, nothing trains
    cut = (reread / "result.json").read_bytes()[:40]
    (reread / "result.json").write_bytes(cut)
    weights_mtime = (reread / "model.safetensors").stat().st_mtime_ns
    # a result and its weights overwritten: the model trains again
    (retrained / "result.json").write_text("{}")
    (retrained / "model.safetensors").write_bytes(b"\0" * 64)
    # a student killed with a damaged checkpoint, whose weak labels the cache lost to damage
    student = sorted(jobs.glob("student-*"))[0]
    (student / "result.json").unlink()
    (student / "model.safetensors").unlink()
    (student / "checkpoint.pt").write_bytes(b"not a torch checkpoint")
    label = next(d for d in deps[student.name] if d.startswith("label-"))
    artifacts.labels_path(label).write_bytes(b"PAR1 damaged PAR1")

    log = io.StringIO()
    outcome = run_study(spec, study_dir, console=Console(file=log, width=300))
    said = log.getvalue()
    assert said.count("its result.json is damaged; running it again") == 2
    assert "what it left for later jobs is missing or damaged; running it again" in said
    assert outcome.failures == {}
    assert _same_metrics(outcome, clean)  # rebuilt to the very numbers of the clean run
    assert (reread / "model.safetensors").stat().st_mtime_ns == weights_mtime
    assert (reread / "result.json.damaged").read_bytes() == cut  # kept for a look
    assert (reread / "result.json").read_bytes().startswith(cut)  # rewritten whole
    assert (study_dir / "jobs" / label / "result.json.stale").is_file()
    assert not (student / "resumes.txt").exists()  # the damaged checkpoint was not resumed
    assert artifacts.load_labels(label) is not None

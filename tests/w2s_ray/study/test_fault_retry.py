"""A trial that crashes once (an error, or its worker process dying) is retried and resumes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from w2s_ray.spec import parse_spec
from w2s_ray.study.runner import run_study

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


def test_crashed_trials_are_retried_from_their_checkpoint_with_the_same_results(
    ray_session, tiny_models, toy_dataset, tmp_path
):
    quiet = Console(file=io.StringIO())
    spec = parse_spec(_spec(tiny_models, toy_dataset))
    clean = run_study(spec, tmp_path / "clean", console=quiet)

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
    assert (
        outcome.results.select(METRICS)
        .sort("job_id")
        .equals(clean.results.select(METRICS).sort("job_id"))
    )

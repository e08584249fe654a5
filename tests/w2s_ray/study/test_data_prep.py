"""What a study's jobs see of a dataset under each length policy, checked before compute:
real tiny models (their tokenizers and contexts) and a local dataset file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from w2s_ray.errors import UserError
from w2s_ray.spec import parse_spec
from w2s_ray.study import data_prep
from w2s_ray.study.plan import Study, plan_jobs, resolve
from w2s_ray.study.runner import describe_counts, prepare


def _study(tiny_models: dict[str, Path], file: Path, **changes: Any) -> Study:
    spec = {
        "name": "lengths",
        "datasets": [{"name": "toy", "path": str(file)}],
        "models": [
            {"name": name, "path": str(path), "pretrain_tokens": 1e9 * (i + 1)}
            for i, (name, path) in enumerate(tiny_models.items())
        ],
        **changes,
        "data": {"n_train": 120, "n_test": 60, **changes.get("data", {})},
    }
    return resolve(parse_spec(spec))


@pytest.fixture(scope="module")
def long_tail_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Toy reviews, one in five padded with filler at the start (its label word at the end)."""
    rows = []
    for i in range(240):
        word = "good" if i % 2 else "bad"
        filler = " ".join(["the film"] * 12) + " " if i % 5 == 0 else ""
        rows.append({"text": f"{filler}{i} it was {word}", "label": i % 2, "group": f"g{i}"})
    path = tmp_path_factory.mktemp("lengths") / "toy.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_the_default_max_length_fits_the_smallest_context(tiny_models, long_tail_dataset):
    study = _study(tiny_models, long_tail_dataset)
    assert study.spec.train.max_length is None
    assert study.max_length("toy") == 64  # a local file's 128, within the tiny BERTs' 64


def test_keep_end_counts_what_was_cut_and_keeps_every_example(tiny_models, long_tail_dataset):
    study = _study(tiny_models, long_tail_dataset, train={"max_length": 12})
    rows = {row["split"]: row for row in data_prep.data_counts(study, "toy")}
    assert rows["pool"]["n_cut"] > 0 and rows["test"]["n_cut"] > 0
    assert rows["pool"]["n_dropped_too_long"] == 0
    pool, test = data_prep.pool_and_test(study, "toy")
    assert rows["pool"]["n_used"] == len(pool) == 120 and rows["test"]["n_used"] == len(test)
    assert any("keeps its last tokens" in line for line in describe_counts(list(rows.values())))


def test_drop_leaves_out_what_some_model_would_cut(tiny_models, long_tail_dataset):
    study = _study(
        tiny_models, long_tail_dataset, train={"max_length": 12}, data={"too_long": "drop"}
    )
    pool, test = data_prep.pool_and_test(study, "toy")
    tokenizers = data_prep.ladder(study, "toy")
    assert not any(tokenizers.too_long([ex.text for ex in pool + test]))
    rows = {row["split"]: row for row in data_prep.data_counts(study, "toy")}
    assert rows["pool"]["n_dropped_too_long"] > 0 and rows["pool"]["n_cut"] == 0
    keep = _study(tiny_models, long_tail_dataset, train={"max_length": 12})
    # a different set of examples: no job of one policy may reuse the other's results
    ids = {j.job_id for jobs in plan_jobs(study).values() for j in jobs}
    assert not ids & {j.job_id for jobs in plan_jobs(keep).values() for j in jobs}


def test_error_refuses_the_study_before_compute(tiny_models, long_tail_dataset):
    study = _study(
        tiny_models, long_tail_dataset, train={"max_length": 12}, data={"too_long": "error"}
    )
    with pytest.raises(UserError, match=r"dataset 'toy': \d+ of 120 pool inputs are longer"):
        prepare(study, Console(quiet=True))


def test_prepare_says_when_fewer_examples_than_asked_are_used(tiny_models, long_tail_dataset):
    study = _study(tiny_models, long_tail_dataset, data={"n_train": 5000, "n_test": 40})
    console = Console(record=True, width=200)
    rows = prepare(study, console)
    pool = next(row for row in rows if row["split"] == "pool")
    assert pool["n_requested"] == 5000 and pool["n_used"] < 5000
    assert "data.n_train asks for 5000 pool examples" in console.export_text()


def test_a_max_length_beyond_a_models_context_is_refused(tiny_models, long_tail_dataset):
    study = _study(tiny_models, long_tail_dataset, train={"max_length": 100})
    with pytest.raises(UserError, match="100 tokens do not fit model 'tiny-s'"):
        prepare(study, Console(quiet=True))

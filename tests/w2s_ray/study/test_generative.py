"""Generative fine-tuning: the strong decoder learns the task's text as a language model,
then its ceiling and its students start from that copy, and PGR pairs them up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.pgr import compute_pgr
from w2s_ray.errors import UserError
from w2s_ray.spec import parse_spec
from w2s_ray.study import artifacts
from w2s_ray.study.execute import run_job
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.store import StudyStore, results_frame
from w2s_ray.train.generative import lm_finetune, perplexity
from w2s_ray.train.loop import NullCheckpointer
from w2s_ray.train.model import load_backbone_tokenizer

GEN = {"name": "xent_gen", "loss": "xent", "generative": True}


def _spec(weak: Path, strong: Path, toy_dataset: Path, **overrides) -> dict:
    return {
        "name": "gen",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": "tiny-s", "path": str(weak), "pretrain_tokens": 1e6},
            {"name": "tiny-llama", "path": str(strong), "pretrain_tokens": 1e6},
        ],
        "mode": "finetune",
        "methods": ["xent", GEN],
        "data": {"n_train": 120, "n_test": 60},
        "train": {"epochs": 3, "lr": 2e-3, "batch_size": 16, "max_length": 16},
        "generative": {"epochs": 2, "lr": 2e-3},
        "baselines": {"enabled": False},
        **overrides,
    }


def _toy_ids(toy_dataset: Path, model: Path) -> list[list[int]]:
    texts = [json.loads(line)["text"] for line in toy_dataset.read_text().splitlines()]
    tokenizer = load_backbone_tokenizer(str(model))
    return [tokenizer(t)["input_ids"] for t in texts[:96]]


class KeepLast:
    def __init__(self) -> None:
        self.state = None

    def save(self, state):
        self.state = state

    def load(self):
        return self.state


def test_lm_finetune_learns_the_text_and_resumes_to_the_same_model(
    tiny_decoders, toy_dataset, tmp_path
):
    model = tiny_decoders["tiny-gpt2"]
    ids = _toy_ids(toy_dataset, model)
    before = perplexity(str(model), ids)
    straight = lm_finetune(
        str(model), ids, tmp_path / "straight", epochs=2, lr=3e-3, batch_size=16, seed=0
    )
    after = perplexity(str(tmp_path / "straight"), ids)
    assert after < 0.7 * before, (before, after)
    assert straight["lm_loss_last"] < straight["lm_loss_first"]
    assert list((tmp_path / "straight").glob("*.safetensors"))
    assert (tmp_path / "straight" / "tokenizer.json").is_file()
    # killed after epoch 1, then resumed: the same model as the straight run
    keep = KeepLast()
    lm_finetune(str(model), ids, tmp_path / "a", epochs=1, lr=3e-3, batch_size=16, seed=0,
                checkpointer=keep)  # fmt: skip
    resumed = lm_finetune(
        str(model), ids, tmp_path / "b", epochs=2, lr=3e-3, batch_size=16, seed=0,
        checkpointer=keep,
    )  # fmt: skip
    assert resumed == straight
    assert perplexity(str(tmp_path / "b"), ids) == pytest.approx(after, rel=1e-6)
    with pytest.raises(ValueError, match="at least one text"):
        lm_finetune(str(model), [], tmp_path / "c", epochs=1, lr=1e-3, batch_size=4, seed=0,
                    checkpointer=NullCheckpointer())  # fmt: skip


def test_generative_plan_adds_the_lm_job_its_ceiling_and_its_students(
    tiny_models, tiny_decoders, toy_dataset
):
    study = resolve(
        parse_spec(_spec(tiny_models["tiny-s"], tiny_decoders["tiny-llama"], toy_dataset))
    )
    stages = plan_jobs(study)
    (gen,) = stages["generative"]
    # the language-model fine-tune's identity holds the `train:` settings it uses
    settings = {"epochs": 2, "lr": 2e-3, "batch_size": 16, "dropout": False}
    assert gen.model == "tiny-llama" and gen.key["generative"] == settings
    spec = _spec(tiny_models["tiny-s"], tiny_decoders["tiny-llama"], toy_dataset)
    spec["train"] = {**spec["train"], "dropout": True}
    (with_dropout,) = plan_jobs(resolve(parse_spec(spec)))["generative"]
    assert with_dropout.key["generative"]["dropout"] and with_dropout.job_id != gen.job_id
    adapted_gt = [j for j in stages["ground_truth"] if j.backbone]
    assert [(j.model, j.deps) for j in adapted_gt] == [("tiny-llama", (gen.job_id,))]
    assert "(generative)" in adapted_gt[0].title
    (student,) = [j for j in stages["student"] if j.method == "xent_gen"]
    assert student.backbone == gen.job_id and gen.job_id in student.deps
    (plain,) = [j for j in stages["student"] if j.method == "xent"]
    assert plain.backbone is None


def test_generative_needs_finetune_mode_and_a_decoder(tiny_models, tiny_decoders, toy_dataset):
    spec = _spec(tiny_models["tiny-s"], tiny_decoders["tiny-llama"], toy_dataset, mode="probe")
    with pytest.raises(UserError, match=r"methods\[1\]\.generative.*mode: finetune"):
        resolve(parse_spec(spec))
    spec = _spec(tiny_models["tiny-s"], tiny_models["tiny-l"], toy_dataset)
    with pytest.raises(UserError, match=r"no strong model of the study is a decoder"):
        resolve(parse_spec(spec))
    spec = _spec(tiny_models["tiny-s"], tiny_decoders["tiny-llama"], toy_dataset)
    spec["models"][1] = "Qwen2.5-7B"  # a card that asks for two GPUs: refused before any job
    with pytest.raises(UserError, match=r"one device, and Qwen2.5-7B need"):
        resolve(parse_spec(spec))
    spec = _spec(tiny_models["tiny-s"], tiny_decoders["tiny-llama"], toy_dataset)
    spec["generative"] = {"epoch": 2}
    with pytest.raises(UserError, match=r"unknown key 'generative.epoch'.*epochs"):
        parse_spec(spec)


def test_generative_study_runs_and_pgr_uses_the_matching_ceiling(
    tiny_models, tiny_decoders, toy_dataset, tmp_path, w2s_cache
):
    study = resolve(
        parse_spec(_spec(tiny_models["tiny-s"], tiny_decoders["tiny-llama"], toy_dataset))
    )
    store = StudyStore(tmp_path / "study")
    results = {}
    for jobs in plan_jobs(study).values():
        for job in jobs:
            results[job.job_id] = run_job(job, study, store)
    (gen,) = plan_jobs(study)["generative"]
    record = results[gen.job_id]
    assert record["lm_loss_last"] < record["lm_loss_first"]
    assert artifacts.load_backbone_record(gen.job_id) is not None
    frame = results_frame(results.values())
    ceilings = frame.filter(frame["stage"] == "ground_truth")
    assert ceilings["pretraining"].to_list().count("generative") == 1
    assert ceilings["pretraining"].null_count() == 2
    pgr = compute_pgr(frame)
    assert pgr.height == 2
    by_method = {row["method"]: row for row in pgr.iter_rows(named=True)}
    adapted = ceilings.filter(ceilings["pretraining"] == "generative")["test_accuracy"][0]
    plain = ceilings.filter(
        ceilings["pretraining"].is_null() & (ceilings["model"] == "tiny-llama")
    )["test_accuracy"][0]
    assert by_method["xent_gen"]["ceiling_accuracy"] == pytest.approx(adapted)
    assert by_method["xent"]["ceiling_accuracy"] == pytest.approx(plain)
    weak = by_method["xent"]["weak_accuracy"]
    assert by_method["xent_gen"]["weak_accuracy"] == weak  # the same published supervisor
    # an unfinished model folder (no completion record) is fine-tuned again, not trusted
    (artifacts.backbone_dir(gen.job_id) / "w2s-complete.json").unlink()
    assert artifacts.load_backbone_record(gen.job_id) is None
    again = run_job(gen, study, store)
    assert again["lm_loss_last"] == pytest.approx(record["lm_loss_last"])

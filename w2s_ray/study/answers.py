"""Stage runners for generative tasks (chess puzzles): the weak model and the ceiling learn
true answers, the weak model writes answers for the student half, the student learns those,
and every model is scored by exact match of its greedy answer. No Ray here.

Accuracy is exact-match accuracy, so PGR is computed from the same columns as for binary
tasks; AUROC has no meaning here and is left NaN.
"""

from __future__ import annotations

from typing import Any

from w2s_ray.data import Splits
from w2s_ray.datasets import Example
from w2s_ray.infer.backend import InferenceBackend
from w2s_ray.infer.hf import TransformersBackend, tokenize
from w2s_ray.study import artifacts, sharding
from w2s_ray.study.graph import Job
from w2s_ray.study.lm_jobs import cached_lm_finetune
from w2s_ray.study.resolve import Study
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import backend
from w2s_ray.train.model import load_backbone_tokenizer

MAX_ANSWER_TOKENS = 8  # a UCI move (at most 5 characters) is a few tokens; one word is read


def exact_match(predicted: str, answer: str) -> bool:
    """The first word written is the answer: surrounding space and what follows don't count."""
    words = predicted.split()
    return bool(words) and words[0] == answer.strip()


def _accuracy(predicted: dict[str, str], examples: list[Example]) -> float:
    hits = sum(exact_match(predicted[ex.id], ex.answer or "") for ex in examples)
    return hits / len(examples)


def _prompt_ids(study: Study, dataset: str, path: str, examples: list[Example]) -> list[list[int]]:
    tokenizer = load_backbone_tokenizer(path, study.spec.trust_remote_code)
    return tokenize(tokenizer, [ex.text for ex in examples], study.max_length(dataset))


def train_on_answers(
    job: Job, study: Study, store: StudyStore, examples: list[Example], answers: dict[str, str]
) -> str:
    """The job's model fine-tuned on (prompt, answer) pairs, learning the answers only;
    cached by job id like every artifact, so a rerun reads it back."""

    def rows() -> tuple[list[list[int]], list[int]]:
        path = study.cards[job.model].resolve_path()
        tokenizer = load_backbone_tokenizer(path, study.spec.trust_remote_code)
        prompts = tokenize(tokenizer, [ex.text for ex in examples], study.max_length(job.dataset))
        # the answer, then end-of-text: a model that learns where answers stop writes one move
        end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        ids = [
            p + tokenizer(answers[ex.id], add_special_tokens=False)["input_ids"] + end
            for p, ex in zip(prompts, examples, strict=True)
        ]
        return ids, [len(p) for p in prompts]

    cfg = study.train_config(job.model, job.seed or 0, study.method(job.method))
    out, _ = cached_lm_finetune(
        job,
        study,
        store,
        rows,
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=job.seed or 0,
        dropout=cfg.dropout,
    )
    return str(out)


def answer(
    study: Study,
    dataset: str,
    model_dir: str,
    examples: list[Example],
    engine: InferenceBackend | None = None,
) -> dict[str, str]:
    """Each example's answer: the first word of the greedy continuation, with the leading
    space answers carry (what a student then learns to write).

    A job that has just trained the model scores it in transformers, in the process that
    holds it (`engine` None); the weak answers for the student half go through the study's
    inference backend.
    """
    prompts = _prompt_ids(study, dataset, model_dir, examples)
    engine = engine or TransformersBackend(study.spec.trust_remote_code)
    texts = engine.greedy_answers(model_dir, prompts, max_new_tokens=MAX_ANSWER_TOKENS)
    return {
        ex.id: " " + (text.split() or [""])[0] for ex, text in zip(examples, texts, strict=True)
    }


def _metrics(predicted: dict[str, str], test: list[Example]) -> dict[str, Any]:
    return {"test_accuracy": _accuracy(predicted, test), "test_auroc": float("nan")}


def run_ground_truth(job: Job, study: Study, store: StudyStore, splits: Splits) -> dict[str, Any]:
    """Weak supervisor and ceiling: learn the true answers of the weak-train half."""
    truth = {ex.id: ex.answer or "" for ex in splits.weak_train}
    model_dir = train_on_answers(job, study, store, splits.weak_train, truth)
    return {**_metrics(answer(study, job.dataset, model_dir, splits.test), splits.test),
            "n_train": len(splits.weak_train)}  # fmt: skip


def answers_cached(job_id: str) -> bool:
    return artifacts.load_answers(job_id) is not None


def run_label(job: Job, study: Study, store: StudyStore, splits: Splits) -> dict[str, Any]:
    """The weak supervisor's greedy answers for the student half and the test set (or a
    shard's slice of them, w2s_ray.study.sharding)."""
    examples = sharding.rows_of(job, splits.student_train + splits.test)
    written = artifacts.load_answers(job.job_id)
    if written is None and job.shards:  # its shards answered every row: merge them
        ids = [ex.id for ex in examples]
        made_by = sharding.merged_backend(job, artifacts.answers_path)
        artifacts.save_answers(job.job_id, sharding.merged_answers(job, ids), made_by)
        written = artifacts.load_answers(job.job_id)
    if written is None and not sharding.merged_elsewhere(job, answers_cached):
        assert job.supervisor is not None
        supervisor = str(artifacts.finished_backbone(job.supervisor))
        engine = backend(study, supervisor, "generate")
        made = answer(study, job.dataset, supervisor, examples, engine)
        artifacts.save_answers(job.job_id, made, engine.name)
        written = artifacts.load_answers(job.job_id)
    if job.shard is not None:
        return sharding.shard_result(job, len(examples))
    assert written is not None
    return {
        **_metrics(written, splits.test),
        "n_train": len(splits.student_train),
        "backend": artifacts.made_by(artifacts.answers_path(job.job_id)),
    }


def run_student(job: Job, study: Study, store: StudyStore, splits: Splits) -> dict[str, Any]:
    """The strong model learns the weak answers; scored on the true ones."""
    label_job = job.labels
    assert label_job is not None
    weak = artifacts.load_answers(label_job)
    if weak is None:
        raise RuntimeError(f"weak answers {label_job} are missing; rerun the study to rebuild")
    model_dir = train_on_answers(job, study, store, splits.student_train, weak)
    predicted = answer(study, job.dataset, model_dir, splits.test)
    agree = sum(predicted[ex.id] == weak[ex.id] for ex in splits.test)
    return {
        **_metrics(predicted, splits.test),
        "n_train": len(splits.student_train),
        "agreement_with_weak": agree / len(splits.test),
        "selection": "last",
    }

"""Prompting baselines: each strong decoder zero-shot, and k-shot with ground-truth or weak
demonstrations. P(label 1) is the softmax over the two answers' log-probabilities."""

from __future__ import annotations

from typing import Any

import torch

from w2s_ray.datasets import Example
from w2s_ray.infer.prompts import draw_demonstrations, encode_for_scoring
from w2s_ray.study import artifacts
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.graph import Job, job_id
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages.base import DatasetPlan
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import Parallel, backend, metrics_of, probs_of
from w2s_ray.study.work import Forward, Sizes, Work

NAME = "baseline"


def plan(p: DatasetPlan) -> list[Job]:
    """Zero-shot once per model; k-shot per seed (the seed draws the demonstrations), shown
    with ground-truth labels or with each weak supervisor's. Binary tasks only: prompting
    scores two fixed answers."""
    if p.answers:
        return []
    study, dataset, data_key = p.study, p.dataset, p.data_key
    labels, ceilings = p.labels, p.ground_truth
    base = study.spec.baselines
    jobs = []
    for strong in study.prompted_models():
        card = study.cards[strong]
        key = {
            **card.identity(),
            "params": card.params,
            **{k: v for k, v in data_key.items() if k != "max_length"},
            "prompt": study.prompt_format(dataset).identity(),
            "n_test": base.n_test,
            "max_prompt_tokens": base.max_prompt_tokens,
        }

        if 0 in base.k:
            jobs.append(_prompting(dataset, strong, "zeroshot", {**key, "k": 0}))
        for k in (k for k in base.k if k > 0):
            for seed in study.spec.seeds:
                shot = {**key, "k": k, "seed": seed}
                if "gt" in base.labels:
                    gt_shot = {**shot, "demos": "gt"}
                    jobs.append(_prompting(dataset, strong, f"fewshot_gt_k{k}", gt_shot, seed=seed))
                if "weak" not in base.labels:
                    continue
                for weak in (w for w, s in study.pairs if s == strong):
                    # its PGR reads the weak labels and the ceiling on the examples it scores
                    label, ceiling = labels[weak, seed], ceilings[strong, seed]
                    jobs.append(
                        _prompting(
                            dataset,
                            strong,
                            f"fewshot_weak_k{k}",
                            {**shot, "demos": label.job_id, "ceiling": ceiling.job_id},
                            seed=seed,
                            weak_model=weak,
                            labels=label.job_id,
                            ceiling=ceiling.job_id,
                        )
                    )
    return jobs


def _prompting(dataset: str, model: str, method: str, key: dict[str, Any], **job: Any) -> Job:
    return Job(job_id(NAME, key), NAME, dataset, model, method=method, key=key, **job)


def run(job: Job, study: Study, store: StudyStore, parallel: Parallel) -> dict[str, Any]:
    """Prompt the strong model: zero-shot, or k-shot with ground-truth or weak demonstrations.

    P(label 1) is the softmax over the two answers' log-probabilities.
    """
    base = study.spec.baselines
    splits = splits_for(study, job.dataset, job.seed or 0)
    test = splits.test[: base.n_test] if base.n_test else splits.test
    ids = [ex.id for ex in test]
    frame = artifacts.load_scores(job.job_id, ids)
    if frame is None:
        _score_prompts(job, study, splits.student_train, test)
        frame = artifacts.load_scores(job.job_id, ids)  # what later runs will read
    if frame is None:
        raise RuntimeError(f"scores of {job.title} could not be read back after scoring")
    scores = frame.select("logprob_0", "logprob_1").to_torch().double()
    probs = torch.softmax(scores, dim=1).float()
    return {
        **metrics_of(probs, test),
        **(_supervision_on(job, store, test) if job.weak_model is not None else {}),
        "n_train": 0,
        "n_test": len(test),
        "shots": job.key["k"],
        "shots_mean": float(frame["demos_used"].mean() or 0.0),
        "backend": frame["backend"][0],
    }


def _supervision_on(job: Job, store: StudyStore, test: list[Example]) -> dict[str, float]:
    """The weak supervisor's and the strong ceiling's metrics on exactly the examples this
    baseline scored, so its PGR compares like with like when it scores part of the test set."""
    label_job, ceiling_job = job.labels, job.ceiling
    assert label_job is not None and ceiling_job is not None
    weak = artifacts.load_labels(label_job)
    ceiling = artifacts.load_test_predictions(store, ceiling_job)
    if weak is None or ceiling is None:
        missing = label_job if weak is None else ceiling_job
        raise RuntimeError(f"the outputs of {missing} are missing; rerun the study to rebuild")
    out = {}
    for who, p1 in (("weak", weak), ("ceiling", ceiling)):
        metrics = metrics_of(probs_of(p1, test), test)
        out[f"{who}_accuracy_on_test"] = metrics["test_accuracy"]
        out[f"{who}_auroc_on_test"] = metrics["test_auroc"]
    return out


def _score_prompts(job: Job, study: Study, pool: list[Example], test: list[Example]) -> None:
    from transformers import AutoConfig, AutoTokenizer

    trust = study.spec.trust_remote_code
    model_path = study.cards[job.model].resolve_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust)
    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust)
    context = getattr(config, "max_position_embeddings", None) or 1024
    if job.weak_model is not None:  # the weak supervisor's hard labels on the student half
        assert job.labels is not None
        soft = artifacts.load_labels(job.labels)
        if soft is None:
            raise RuntimeError(f"weak labels {job.labels} are missing; rerun the study")
        shown = {ex.id: int(soft[ex.id] > 0.5) for ex in pool}
    else:
        shown = {ex.id: ex.label for ex in pool}
    demos = draw_demonstrations(pool, shown, job.key["k"], seed=job.seed or 0)
    fmt = study.prompt_format(job.dataset)
    budget = min(study.spec.baselines.max_prompt_tokens, int(context))
    encoded = encode_for_scoring(tokenizer, fmt, demos, [ex.text for ex in test], budget)
    engine = backend(study, model_path, "generate")
    scores = engine.score_choices(model_path, encoded.prompts, encoded.choices)
    artifacts.save_scores(
        job.job_id, [ex.id for ex in test], scores, encoded.demos_used, engine.name
    )


def outputs_intact(job: Job, study: Study, store: StudyStore, sees_cache: bool) -> bool:
    return True  # a baseline leaves nothing another job reads


def work(job: Job, study: Study, sizes: Sizes) -> Work:
    base = study.spec.baselines
    n = min(sizes.test, base.n_test or sizes.test)
    return Work((Forward("prompt", n, prompt_tokens(study, job)),))


def prompt_tokens(study: Study, job: Job) -> int:
    """Tokens of one prompt at most: k demonstrations and the question, within the cap."""
    shots = job.key.get("k", 0)
    budget = study.spec.baselines.max_prompt_tokens
    return min(budget, (shots + 1) * (study.max_length(job.dataset) + 8) + 32)

"""A job whose product is a language model: fine-tuned once, kept as a model folder in the
cache under the job's id, with a completion record written last (generative fine-tuning,
and the models of generative tasks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from w2s_ray.study import artifacts
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.store import StudyStore
from w2s_ray.train.generative import lm_finetune


def cached_lm_finetune(
    job: Job,
    study: Study,
    store: StudyStore,
    rows: Callable[[], tuple[list[list[int]], list[int] | None]],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    dropout: bool = False,
) -> tuple[Path, dict[str, float]]:
    """(model folder, its loss record): read back if finished, else trained from the job's
    model card (resuming from the job's checkpoint) and recorded. `rows()` gives the token
    ids to learn and, for prompt + answer rows, each prompt's length; it runs only when the
    model has to be trained."""
    out = artifacts.backbone_dir(job.job_id)
    record = artifacts.load_backbone_record(job.job_id)
    if record is not None:
        return out, record
    token_ids, prompt_lengths = rows()
    checkpointer = artifacts.FileCheckpointer(store, store.job_file(job.job_id, "checkpoint.pt"))
    record = lm_finetune(
        study.cards[job.model].resolve_path(),
        token_ids,
        out,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        checkpointer=checkpointer,
        trust_remote_code=study.spec.trust_remote_code,
        prompt_lengths=prompt_lengths,
        dropout=dropout,
    )
    artifacts.save_backbone_record(job.job_id, record)
    checkpointer.clear()
    return out, record

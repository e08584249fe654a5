"""Run one planned job, whatever its stage, and write its result.json. No Ray here.

The stage's module (w2s_ray.study.stages.<stage>) does the work; this adds what every
result records: who, what, how long, and which inputs.
"""

from __future__ import annotations

import time
from typing import Any

from w2s_ray.study.graph import Job
from w2s_ray.study.inputs import job_record
from w2s_ray.study.resolve import Study
from w2s_ray.study.stages import stage_of
from w2s_ray.study.store import StudyStore
from w2s_ray.study.training import ALONE, Parallel

LORA_STAGES = ("ground_truth", "bootstrap", "student")  # the stages that fine-tune classifiers


def run_job(
    job: Job, study: Study, store: StudyStore, parallel: Parallel = ALONE
) -> dict[str, Any] | None:
    """Run `job` and record its result atomically; returns the result (None off rank 0)."""
    started = time.monotonic()
    result = stage_of(job).run(job, study, store, parallel)
    if result is None:
        return None
    card = study.cards[job.model]
    weak_card = study.cards.get(job.weak_model) if job.weak_model else None
    method = study.method(job.method)
    round_ = job.key.get("round")
    result.update(
        stage=job.stage,
        dataset=job.dataset,
        seed=job.seed,
        model=job.model,
        weak_model=job.weak_model,
        method=method.row_name(round_) if method else job.method,
        round=round_,
        method_spec=method.describe(job.model) if method else None,
        lora=_lora(job, study),
        mode=study.spec.mode,
        effective_compute=card.effective_compute,
        weak_effective_compute=weak_card.effective_compute if weak_card else None,
        pretraining="generative" if job.backbone else None,
        max_length=study.max_length(job.dataset),
        wall_seconds=round(time.monotonic() - started, 3),
        title=job.title,
        inputs=job_record(study, job),  # the revisions and digests its numbers came from
    )
    if "member" in job.key:  # an ensemble member's truth or labels: not a results row
        result["member"] = job.key["member"]
    store.write_result(job.job_id, result)
    return result


def _lora(job: Job, study: Study) -> str | None:
    """The adapters a LoRA study's classifier fine-tunes trained (their rows say so)."""
    lora = study.spec.train.lora
    if lora is None or job.stage not in LORA_STAGES or job.dataset in study.answer_tasks:
        return None
    return lora.describe()

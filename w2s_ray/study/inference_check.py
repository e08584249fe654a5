"""An explicit `inference.backend: vllm` checked against every model it will be asked to
run, before Ray starts: a model vLLM cannot take would otherwise fail its first inference
job after the fine-tunes before it had run."""

from __future__ import annotations

from w2s_ray.infer.backend import backend_for, vllm_usable
from w2s_ray.infer.vllm_support import Task
from w2s_ray.study.cost import work_of
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.work import Forward, Work


def inference_task(work: Work) -> Task | None:
    """What an inference backend does for a job: pool hidden states (features, a fine-tuned
    classifier's labels) or generate (answers, prompt scores); None for any other job."""
    if not work.inference_only:
        return None
    kinds = {p.kind for p in work.passes if isinstance(p, Forward)}
    return "generate" if kinds & {"answer", "prompt"} else "pool"


def check_vllm_takes_every_model(study: Study, jobs: list[Job]) -> None:
    """Raise the UserError `backend_for` gives for the first (model, task) vLLM cannot take.
    Only where the driver itself has a usable vLLM: a head node without one cannot tell,
    and its workers report it."""
    if study.spec.inference.backend != "vllm" or not vllm_usable():
        return
    asked = {(job.model, inference_task(work_of(job, study))) for job in jobs}
    for model, task in sorted((m, t) for m, t in asked if t is not None):
        path = study.cards[model].resolve_path()
        backend_for("vllm", path, task, trust_remote_code=study.spec.trust_remote_code)

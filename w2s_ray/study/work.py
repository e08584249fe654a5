"""What a job does to its model, as passes a cost model can price: each stage module says
what its jobs do (`work`); cost.py prices it in seconds and GPU memory, estimate.py in
FLOPs, and resources.py reads from it whether a job may share a GPU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from w2s_ray.study.graph import Job
    from w2s_ray.study.resolve import Study

ForwardKind = Literal["features", "label", "prompt", "answer"]


@dataclass(frozen=True)
class Train:
    """Fine-tuning passes over `examples` texts at the dataset's max_length."""

    examples: int
    epochs: int
    batch: int
    language_model: bool = False  # logits over the vocabulary, one process (no Ray Train)
    lora_rank: int | None = None  # LoRA adapters of this rank on a frozen backbone
    checkpointed: bool = False  # activations recomputed in the backward pass

    @property
    def flops_per_param_token(self) -> float:
        """2 forward + 2 input gradients + 2 weight gradients (none for LoRA's frozen
        weights), + 2 for the forward a checkpointed block recomputes."""
        return (6.0 if self.lora_rank is None else 4.0) + (2.0 if self.checkpointed else 0.0)


@dataclass(frozen=True)
class Forward:
    """One forward over `examples` texts; `tokens` per text (None: the dataset's max_length).
    `label` runs a fine-tuned classifier (fp32 weights); `answer` also generates."""

    kind: ForwardKind
    examples: int
    tokens: int | None = None


@dataclass(frozen=True)
class Work:
    passes: tuple[Train | Forward, ...] = ()
    heads: int = 0  # probe heads trained or applied on cached features (sub-second each)

    @property
    def trains_language_model(self) -> bool:
        return any(isinstance(p, Train) and p.language_model for p in self.passes)

    @property
    def trains_classifier(self) -> bool:
        return any(isinstance(p, Train) and not p.language_model for p in self.passes)

    @property
    def inference_only(self) -> bool:
        """Forward passes and nothing else: what an inference backend (vLLM) may run."""
        return bool(self.passes) and all(isinstance(p, Forward) for p in self.passes)

    @property
    def prompts(self) -> bool:
        return any(isinstance(p, Forward) and p.kind == "prompt" for p in self.passes)


@dataclass(frozen=True)
class Sizes:
    """(weak-train, student-train, test) example counts a job sees, at most."""

    weak_train: int
    student_train: int
    test: int


def trained_and_scored(job: Job, study: Study, train: int, scored: int) -> Work:
    """A model trained on `train` examples then scoring `scored`: a fine-tune and a forward,
    a language model's fine-tune and its answers on an answer task, a probe head else."""
    if study.spec.mode != "finetune":
        return Work(heads=1)
    cfg = study.train_config(job.model, job.seed or 0, study.method(job.method))
    if job.dataset in study.answer_tasks:
        fine_tune = Train(train, cfg.epochs, cfg.batch_size, language_model=True)
        return Work((fine_tune, Forward("answer", scored)))
    rank = cfg.lora.rank if cfg.lora is not None else None
    checkpointed = study.spec.resources.activation_checkpointing
    fine_tune = Train(train, cfg.epochs, cfg.batch_size, lora_rank=rank, checkpointed=checkpointed)
    return Work((fine_tune, Forward("label", scored)))

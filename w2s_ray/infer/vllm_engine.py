"""vLLM's offline engine, started once per (model, runner) and kept for the jobs after it.

A process holds one engine at a time: starting another first shuts the last one down, so
its memory is free. What `LLM(...)` is given is a pure function, tested without an engine.
"""

from __future__ import annotations

import atexit
import gc
import os
from dataclasses import dataclass
from typing import Any

import torch

# vLLM's sequence poolers, by w2s-ray's pooling names (w2s_ray.train.model.pool_hidden)
POOLING_TYPES = {"mean": "MEAN", "last": "LAST"}


@dataclass(frozen=True)
class EngineSpec:
    """What an engine is started with; a job asking for another spec gets a new engine."""

    model: str
    runner: str = "generate"  # "generate" (scores, answers) or "pooling" (hidden states)
    pooling: str | None = None  # pooling runner: "mean" or "last"
    tokenizer: str | None = None  # another folder's tokenizer (an exported classifier's)
    max_model_len: int | None = None


def engine_kwargs(spec: EngineSpec, *, gpus: int, trust_remote_code: bool) -> dict[str, Any]:
    """`LLM(...)` arguments: bf16 and tensor parallelism on GPUs, fp32 on CPU.

    The Ray task that runs the engine already holds the GPUs it uses, so the tensor-parallel
    workers are processes of the task's own ("mp"): vLLM's Ray executor would ask Ray for
    the same GPUs again and wait for ever. Pooling returns the pooled last hidden states as
    they are (no normalisation), the way transformers' path pools them.
    """
    kwargs: dict[str, Any] = {
        "model": spec.model,
        "seed": 0,
        "trust_remote_code": trust_remote_code,
        "dtype": "bfloat16" if gpus > 0 else "float32",
        # On CPU, compiling the model costs a minute of start-up (SmolLM2-135M: 79 s vs 20 s
        # eager) for under 10% more throughput; a job scores a few thousand texts.
        "enforce_eager": gpus == 0,
    }
    if spec.tokenizer is not None:
        kwargs["tokenizer"] = spec.tokenizer
    if spec.max_model_len is not None:
        kwargs["max_model_len"] = spec.max_model_len
    if spec.runner == "pooling":  # `pooler_config` becomes vLLM's PoolerConfig in `engine`
        kwargs["runner"] = "pooling"
        kwargs["convert"] = "embed"  # decoders pool through vLLM's embedding adapter
        kwargs["pooler_config"] = {
            "pooling_type": POOLING_TYPES[spec.pooling or "mean"],
            "use_activation": False,
        }
    if gpus > 1:
        kwargs["tensor_parallel_size"] = gpus
        kwargs["distributed_executor_backend"] = "mp"
    return kwargs


_ENGINES: dict[EngineSpec, Any] = {}


def engine(spec: EngineSpec, trust_remote_code: bool) -> Any:
    """The engine for `spec`, started on first use (the previous one is shut down first)."""
    if spec not in _ENGINES:
        release_engines()
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the CPU build's default is 4
        from vllm import LLM
        from vllm.config import PoolerConfig

        kwargs = engine_kwargs(
            spec, gpus=torch.cuda.device_count(), trust_remote_code=trust_remote_code
        )
        if "pooler_config" in kwargs:
            kwargs["pooler_config"] = PoolerConfig(**kwargs["pooler_config"])
        _ENGINES[spec] = LLM(**kwargs)
        # (re)registered after vLLM's own exit hooks, so it runs before them: atexit is LIFO
        atexit.unregister(release_engines)
        atexit.register(release_engines)
    return _ENGINES[spec]


def _shut_down(llm: Any) -> None:
    """Stop the engine's core process now.

    Left to garbage collection, the engine core is stopped by a finalizer at interpreter
    exit, when logging's streams are closed and threads are being torn down; that can
    abort the process (exit 134) after all the work succeeded.
    """
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()


def release_engines() -> None:
    """Shut the cached engine down (its worker processes and memory) before exit."""
    engines = list(_ENGINES.values())
    _ENGINES.clear()
    for llm in engines:
        _shut_down(llm)
    gc.collect()

"""The vLLM backend: the offline `LLM` engine for prompting baselines, at GPU speed.

What vLLM is asked and how its answers are read are pure functions below, tested without
an engine; `VllmBackend` only wires them to one. Prompts go in as token ids made by
`w2s_ray.infer.prompts`, so both backends score exactly the same tokens.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from w2s_ray.infer.backend import ClassifierRef

log = logging.getLogger(__name__)


def single_token_answers(choices: list[list[int]]) -> bool:
    return all(len(c) == 1 for c in choices)


def sampling_kwargs(choices: list[list[int]]) -> dict[str, Any]:
    """`SamplingParams` arguments that return what scoring `choices` needs.

    Single-token answers: the next token's log-probabilities for exactly those ids.
    Longer answers: each answer is appended to the prompt and the prompt's own
    log-probabilities (`prompt_logprobs=0`: each position's actual token) are summed.
    """
    if single_token_answers(choices):
        ids = sorted({c[0] for c in choices})
        return {"max_tokens": 1, "temperature": 0.0, "logprobs": len(ids), "logprob_token_ids": ids}
    return {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}


def _logprob(entry: Any) -> float:
    """vLLM's `Logprob` object, or a bare float."""
    return float(getattr(entry, "logprob", entry))


def read_next_token(logprobs: Mapping[int, Any], choices: list[list[int]]) -> list[float]:
    """Each single-token answer's log-probability from one generated position's dict."""
    missing = [c[0] for c in choices if c[0] not in logprobs]
    if missing:
        raise RuntimeError(f"vLLM returned no log-probability for token ids {missing}")
    return [_logprob(logprobs[c[0]]) for c in choices]


def read_continuation(
    prompt_logprobs: Sequence[Mapping[int, Any] | None], prompt_len: int, answer: list[int]
) -> float:
    """Sum of the answer tokens' log-probabilities, the answer sitting after `prompt_len` ids."""
    if len(prompt_logprobs) != prompt_len + len(answer):
        raise RuntimeError(
            f"vLLM returned {len(prompt_logprobs)} prompt positions for "
            f"{prompt_len} + {len(answer)} tokens"
        )
    total = 0.0
    for offset, token in enumerate(answer):
        position = prompt_logprobs[prompt_len + offset]
        if position is None or token not in position:
            raise RuntimeError(f"vLLM returned no log-probability for token {token}")
        total += _logprob(position[token])
    return total


def engine_kwargs(
    model: str, *, gpus: int, max_model_len: int | None, trust_remote_code: bool
) -> dict[str, Any]:
    """`LLM(...)` arguments: bf16 and tensor parallelism on GPUs, fp32 on CPU.

    The Ray trial that runs the engine already holds the GPUs it uses, so the tensor-parallel
    workers are processes of the trial's own ("mp"): vLLM's Ray executor would ask Ray for
    the same GPUs again and wait for ever.
    """
    kwargs: dict[str, Any] = {
        "model": model,
        "seed": 0,
        "trust_remote_code": trust_remote_code,
        "dtype": "bfloat16" if gpus > 0 else "float32",
        # On CPU, compiling the model costs a minute of start-up (SmolLM2-135M: 79 s vs 20 s
        # eager) for under 10% more throughput; a baseline job scores a few hundred prompts.
        "enforce_eager": gpus == 0,
    }
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    if gpus > 1:
        kwargs["tensor_parallel_size"] = gpus
        kwargs["distributed_executor_backend"] = "mp"
    return kwargs


_ENGINES: dict[str, Any] = {}  # model -> LLM: one engine at a time, kept for the next job


def _engine(model: str, trust_remote_code: bool) -> Any:
    if model not in _ENGINES:
        release_engines()  # free the previous engine's memory first
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the CPU build's default is 4
        from vllm import LLM

        gpus = torch.cuda.device_count()
        _ENGINES[model] = LLM(
            **engine_kwargs(
                model, gpus=gpus, max_model_len=None, trust_remote_code=trust_remote_code
            )
        )
        # (re)registered after vLLM's own exit hooks, so it runs before them: atexit is LIFO
        atexit.unregister(release_engines)
        atexit.register(release_engines)
    return _ENGINES[model]


def _shut_down(engine: Any) -> None:
    """Stop the engine's core process now.

    Left to garbage collection, the engine core is stopped by a finalizer at interpreter
    exit, when logging's streams are closed and threads are being torn down; that can
    abort the process (exit 134) after all the work succeeded.
    """
    core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()


def release_engines() -> None:
    """Shut the cached engine down (its worker processes and memory) before exit."""
    import gc

    engines = list(_ENGINES.values())
    _ENGINES.clear()
    for engine in engines:
        _shut_down(engine)
    gc.collect()


class VllmBackend:
    """Scores answers with vLLM; classifier heads and pooled features go to transformers,
    since vLLM's pooling runners cannot load w2s-ray's classifier (a linear head with a
    bias on mean- or last-token pooling), and the fallback is logged once per call."""

    name = "vllm"

    def __init__(self, trust_remote_code: bool = False) -> None:
        from w2s_ray.infer.hf import TransformersBackend

        self.trust_remote_code = trust_remote_code
        self._fallback = TransformersBackend(trust_remote_code)

    def features(
        self, model: str, texts: list[str], *, pooling: str, max_length: int
    ) -> torch.Tensor:
        log.info("vllm backend: pooled features come from transformers")
        return self._fallback.features(model, texts, pooling=pooling, max_length=max_length)

    def label(
        self, classifier: ClassifierRef, texts: list[str], *, max_length: int
    ) -> torch.Tensor:
        log.info("vllm backend: classifier heads run in transformers")
        return self._fallback.label(classifier, texts, max_length=max_length)

    def score_choices(
        self, model: str, prompts: list[list[int]], choices: list[list[int]]
    ) -> torch.Tensor:
        from vllm import SamplingParams

        engine = _engine(model, self.trust_remote_code)
        params = SamplingParams(**sampling_kwargs(choices))
        scores = torch.zeros(len(prompts), len(choices), dtype=torch.float64)
        if single_token_answers(choices):
            requests = [{"prompt_token_ids": p} for p in prompts]
            outputs = engine.generate(requests, params, use_tqdm=False)
            for i, output in enumerate(outputs):
                scores[i] = torch.tensor(read_next_token(output.outputs[0].logprobs[0], choices))
            return scores
        for c, answer in enumerate(choices):
            requests = [{"prompt_token_ids": p + answer} for p in prompts]
            outputs = engine.generate(requests, params, use_tqdm=False)
            for i, output in enumerate(outputs):
                scores[i, c] = read_continuation(output.prompt_logprobs, len(prompts[i]), answer)
        return scores

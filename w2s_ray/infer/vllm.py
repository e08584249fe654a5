"""The vLLM backend: features, weak labels, greedy answers and prompt scores, at GPU speed.

What vLLM is asked and how its answers are read are pure functions below, tested without
an engine; `VllmBackend` only wires them to one. Every input goes in as token ids made the
way the transformers backend makes them (the same truncation, the same prompts), so both
backends see exactly the same tokens.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from w2s_ray.cache import cache_root
from w2s_ray.infer.backend import ClassifierRef
from w2s_ray.infer.export import export_backbone, head_probs
from w2s_ray.infer.vllm_engine import EngineSpec, engine, release_engines


def single_token_answers(choices: list[list[int]]) -> bool:
    return all(len(c) == 1 for c in choices)


def sampling_kwargs(choices: list[list[int]]) -> dict[str, Any]:
    """`SamplingParams` arguments for single-token answers: the next token's
    log-probabilities for exactly those ids, one request per prompt."""
    ids = sorted({c[0] for c in choices})
    return {"max_tokens": 1, "temperature": 0.0, "logprobs": len(ids), "logprob_token_ids": ids}


def continuation_kwargs(answer: list[int]) -> dict[str, Any]:
    """`SamplingParams` arguments for a longer answer, sent as prompt + answer[:-1]: the
    prompt's own log-probabilities (`prompt_logprobs=0`: each position's actual token) give
    all but the last answer token, the generated position gives the last.

    Sending the whole answer would make vLLM generate past it: a prompt that fills the
    model's context with its answer (as `encode_for_scoring` allows) would not fit.
    """
    kwargs = {"max_tokens": 1, "temperature": 0.0, "logprobs": 1, "logprob_token_ids": answer[-1:]}
    return {**kwargs, "prompt_logprobs": 0} if len(answer) > 1 else kwargs


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
    prompt_logprobs: Sequence[Mapping[int, Any] | None] | None,
    next_token: Mapping[int, Any],
    prompt_len: int,
    answer: list[int],
) -> float:
    """Sum of the answer tokens' log-probabilities: all but the last from the positions
    after `prompt_len` ids of the request (prompt + answer[:-1]), the last from the
    generated position's dict `next_token`."""
    head = answer[:-1]
    positions = list(prompt_logprobs or [])
    if head and len(positions) != prompt_len + len(head):
        raise RuntimeError(
            f"vLLM returned {len(positions)} prompt positions for {prompt_len} + {len(head)} tokens"
        )
    total = 0.0
    for offset, token in enumerate(head):
        position = positions[prompt_len + offset]
        if position is None or token not in position:
            raise RuntimeError(f"vLLM returned no log-probability for token {token}")
        total += _logprob(position[token])
    return total + read_next_token(next_token, [answer[-1:]])[0]


def greedy_kwargs(max_new_tokens: int) -> dict[str, Any]:
    """`SamplingParams` arguments for the transformers path's greedy answers: the argmax token
    each step, stopping at end-of-text (vLLM reads the model's stop ids as `generate` does).
    The tokens are decoded here, by the same tokenizer call as transformers' path: vLLM's
    incremental detokenizer holds back an unfinished UTF-8 character where `decode` writes
    a replacement character."""
    return {"max_tokens": max_new_tokens, "temperature": 0.0, "detokenize": False}


STALE_SECONDS = 24 * 3600  # no label job holds an export this long


def remove_stale(scratch: Path) -> None:
    """Delete exports left by label jobs that were killed (a SIGKILL skips their clean-up);
    a day old, so none still in use goes."""
    cutoff = time.time() - STALE_SECONDS
    for folder in scratch.glob("classifier-*"):
        if folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def _context(model: str, max_length: int, trust_remote_code: bool) -> int:
    """The pooling engine's context: texts are cut to `max_length`, so one engine serves
    every job of that length, unless the model's positions end sooner (vLLM refuses a
    longer context; a text that long fails in transformers too)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    positions = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    return min(max_length, int(positions)) if positions else max_length


def _token_prompts(ids: list[list[int]]) -> list[dict[str, list[int]]]:
    return [{"prompt_token_ids": row} for row in ids]


class VllmBackend:
    """Runs every inference task on vLLM's offline engine; the backend contract
    (tests/w2s_ray/infer/test_backend_contract.py) holds it to transformers' numbers."""

    name = "vllm"

    def __init__(self, trust_remote_code: bool = False) -> None:
        self.trust_remote_code = trust_remote_code

    def _pool(
        self, model: str, texts: list[str], *, pooling: str, max_length: int, tokenizer: str
    ) -> torch.Tensor:
        from w2s_ray.infer.hf import tokenize
        from w2s_ray.train.model import load_backbone_tokenizer

        tokens = load_backbone_tokenizer(tokenizer, self.trust_remote_code)
        ids = tokenize(tokens, texts, max_length)
        spec = EngineSpec(
            model,
            runner="pooling",
            pooling=pooling,
            tokenizer=None if tokenizer == model else tokenizer,
            max_model_len=_context(model, max_length, self.trust_remote_code),
        )
        outputs = engine(spec, self.trust_remote_code).embed(_token_prompts(ids), use_tqdm=False)
        return torch.tensor([o.outputs.embedding for o in outputs], dtype=torch.float32)

    def features(
        self, model: str, texts: list[str], *, pooling: str, max_length: int
    ) -> torch.Tensor:
        return self._pool(model, texts, pooling=pooling, max_length=max_length, tokenizer=model)

    def label(
        self, classifier: ClassifierRef, texts: list[str], *, max_length: int
    ) -> torch.Tensor:
        """The trained backbone exported for vLLM (a scratch folder beside the cache), pooled
        there, its head applied here."""
        scratch = cache_root() / "scratch"
        scratch.mkdir(exist_ok=True)
        remove_stale(scratch)
        with tempfile.TemporaryDirectory(dir=scratch, prefix="classifier-") as folder:
            export_backbone(classifier, Path(folder), trust_remote_code=self.trust_remote_code)
            try:
                pooled = self._pool(
                    folder,
                    texts,
                    pooling=classifier.pooling,
                    max_length=max_length,
                    tokenizer=classifier.backbone,
                )
            finally:
                release_engines()  # its folder goes now; no later job loads this model
        return head_probs(classifier.weights, pooled)

    def score_choices(
        self, model: str, prompts: list[list[int]], choices: list[list[int]]
    ) -> torch.Tensor:
        from vllm import SamplingParams

        llm = engine(EngineSpec(model), self.trust_remote_code)
        scores = torch.zeros(len(prompts), len(choices), dtype=torch.float64)
        if single_token_answers(choices):
            params = SamplingParams(**sampling_kwargs(choices))
            outputs = llm.generate(_token_prompts(prompts), params, use_tqdm=False)
            for i, output in enumerate(outputs):
                scores[i] = torch.tensor(read_next_token(output.outputs[0].logprobs[0], choices))
            return scores
        for c, answer in enumerate(choices):
            requests = _token_prompts([p + answer[:-1] for p in prompts])
            params = SamplingParams(**continuation_kwargs(answer))
            outputs = llm.generate(requests, params, use_tqdm=False)
            for i, output in enumerate(outputs):
                next_token = output.outputs[0].logprobs[0]
                scores[i, c] = read_continuation(
                    output.prompt_logprobs, next_token, len(prompts[i]), answer
                )
        return scores

    def greedy_answers(
        self, model: str, prompts: list[list[int]], *, max_new_tokens: int
    ) -> list[str]:
        from vllm import SamplingParams

        from w2s_ray.train.model import load_backbone_tokenizer

        llm = engine(EngineSpec(model), self.trust_remote_code)
        params = SamplingParams(**greedy_kwargs(max_new_tokens))
        outputs = llm.generate(_token_prompts(prompts), params, use_tqdm=False)
        tokenizer = load_backbone_tokenizer(model, self.trust_remote_code)
        return [
            tokenizer.decode(list(output.outputs[0].token_ids), skip_special_tokens=True)
            for output in outputs
        ]

"""The transformers backend: batched forwards under inference mode, bf16 on GPU.

Batches group texts of similar length and pad each to its own longest, so little compute
goes to padding. Loaded models stay cached in the process for the jobs that follow.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from safetensors.torch import load

from w2s_ray.infer.backend import ClassifierRef
from w2s_ray.train.inputs import TokenInputs, length_sorted_batches
from w2s_ray.train.loop import predict_probs
from w2s_ray.train.model import (
    FinetuneClassifier,
    load_backbone,
    load_backbone_tokenizer,
    pool_hidden,
)
from w2s_ray.truncation import encode_keep_end


def tokenize(tokenizer: object, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids without padding (padding happens per batch), each text keeping its last
    `max_length` tokens: QA tasks put the question and answer at the end."""
    return encode_keep_end(tokenizer, texts, max_length)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


@torch.inference_mode()
def extract_features(
    model_path: str,
    texts: list[str],
    *,
    pooling: str,
    max_length: int,
    batch_size: int = 64,
    trust_remote_code: bool = False,
) -> torch.Tensor:
    """Pooled last hidden states [N, H] (float32, input order), batched by length."""
    device = pick_device()
    backbone, tokenizer = load_backbone(model_path, trust_remote_code=trust_remote_code)
    backbone = backbone.to(device=device, dtype=_dtype(device)).eval()
    token_ids = tokenize(tokenizer, texts, max_length)
    inputs = TokenInputs(token_ids, tokenizer.pad_token_id)
    features = torch.zeros(len(texts), int(backbone.config.hidden_size))
    for idx in length_sorted_batches([len(t) for t in token_ids], batch_size):
        batch = {k: v.to(device) for k, v in inputs.batch(idx).items()}
        hidden = backbone(**batch).last_hidden_state
        features[idx] = pool_hidden(hidden, batch["attention_mask"], pooling).float().cpu()
    return features


@torch.inference_mode()
def classify(
    classifier: ClassifierRef,
    texts: list[str],
    *,
    max_length: int,
    batch_size: int = 64,
    trust_remote_code: bool = False,
) -> torch.Tensor:
    """A fine-tuned classifier's class probabilities [N, 2] (input order)."""
    device = pick_device()
    backbone, tokenizer = load_backbone(classifier.backbone, trust_remote_code=trust_remote_code)
    model = FinetuneClassifier(backbone, classifier.pooling)
    model.load_state_dict(load(classifier.weights))
    token_ids = tokenize(tokenizer, texts, max_length)
    inputs = TokenInputs(token_ids, tokenizer.pad_token_id)
    batches = length_sorted_batches([len(t) for t in token_ids], batch_size)
    return predict_probs(model.to(device), inputs, batches=batches)


@functools.lru_cache(maxsize=2)
def _causal_lm(model_path: str, trust_remote_code: bool) -> tuple[Any, torch.device]:
    from transformers import AutoModelForCausalLM

    device = pick_device()
    model = AutoModelForCausalLM.from_pretrained(
        model_path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=_dtype(device)
    )
    return model.to(device).eval(), device


@torch.inference_mode()
def score_choices(
    model_path: str,
    prompts: list[list[int]],
    choices: list[list[int]],
    *,
    batch_size: int = 32,
    trust_remote_code: bool = False,
) -> torch.Tensor:
    """Sum of log-probabilities of each choice's tokens after each prompt: [N, C].

    Single-token answers need one forward per prompt (read at its last position); longer
    ones one forward per (prompt, answer).
    """
    model, device = _causal_lm(model_path, trust_remote_code)
    scores = torch.zeros(len(prompts), len(choices), dtype=torch.float64)
    if all(len(c) == 1 for c in choices):
        # The vocabulary projection is as costly as the whole body for a small model: apply
        # it at each prompt's last position only, where the answer's first token is read.
        body, head = model.base_model, model.get_output_embeddings()
        answer_ids = torch.tensor([c[0] for c in choices], device=device)
        padded = TokenInputs(prompts, pad_id=0)  # pads are masked out, never read
        for idx in length_sorted_batches([len(p) for p in prompts], batch_size):
            batch = {k: v.to(device) for k, v in padded.batch(idx).items()}
            hidden = body(**batch).last_hidden_state
            ends = batch["attention_mask"].sum(1) - 1
            last = hidden[torch.arange(len(idx), device=device), ends]
            logprobs = torch.log_softmax(head(last).float(), -1)
            scores[idx] = logprobs[:, answer_ids].double().cpu()
        return scores
    for c, answer in enumerate(choices):
        rows = TokenInputs([p + answer for p in prompts], pad_id=0)
        for idx in length_sorted_batches([len(r) for r in rows.token_ids], batch_size):
            batch = {k: v.to(device) for k, v in rows.batch(idx).items()}
            logits = model(**batch).logits
            logprobs = torch.log_softmax(logits.float(), -1)
            for j, i in enumerate(idx.tolist()):
                start = len(prompts[i])  # answer tokens sit at start .. start+len-1
                positions = torch.arange(start - 1, start - 1 + len(answer), device=device)
                targets = torch.tensor(answer, device=device)
                scores[i, c] = logprobs[j, positions, targets].double().sum().cpu()
    return scores


class TransformersBackend:
    """Runs wherever torch does; the reference the vLLM backend is tested against."""

    name = "transformers"

    def __init__(self, trust_remote_code: bool = False) -> None:
        self.trust_remote_code = trust_remote_code

    def features(
        self, model: str, texts: list[str], *, pooling: str, max_length: int
    ) -> torch.Tensor:
        return extract_features(
            model,
            texts,
            pooling=pooling,
            max_length=max_length,
            trust_remote_code=self.trust_remote_code,
        )

    def label(
        self, classifier: ClassifierRef, texts: list[str], *, max_length: int
    ) -> torch.Tensor:
        return classify(
            classifier, texts, max_length=max_length, trust_remote_code=self.trust_remote_code
        )

    def score_choices(
        self, model: str, prompts: list[list[int]], choices: list[list[int]]
    ) -> torch.Tensor:
        return score_choices(model, prompts, choices, trust_remote_code=self.trust_remote_code)

    def greedy_answers(
        self, model: str, prompts: list[list[int]], *, max_new_tokens: int
    ) -> list[str]:
        return greedy_answers(
            model, prompts, max_new_tokens=max_new_tokens, trust_remote_code=self.trust_remote_code
        )


@torch.inference_mode()
def greedy_answers(
    model_path: str,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    batch_size: int = 64,
    trust_remote_code: bool = False,
) -> list[str]:
    """Each prompt's greedy continuation, decoded (prompts padded on the left, in batches)."""
    model, device = _causal_lm(model_path, trust_remote_code)
    tokenizer = load_backbone_tokenizer(model_path, trust_remote_code)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    answers: list[str] = [""] * len(prompts)
    for first in range(0, len(prompts), batch_size):
        rows = prompts[first : first + batch_size]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding: every prompt ends at the last column
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
        )
        for i, row in enumerate(out[:, width:].tolist()):
            answers[first + i] = tokenizer.decode(row, skip_special_tokens=True)
    return answers

"""Batched transformers forward passes: pooled features for probe mode (CPU or GPU)."""

from __future__ import annotations

import torch

from w2s_ray.train.inputs import TokenInputs, length_sorted_batches
from w2s_ray.train.model import load_backbone, pool_hidden


def tokenize(tokenizer: object, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids without padding, truncated to `max_length` (padding happens per batch)."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=False)  # type: ignore[operator]
    return [list(ids) for ids in encoded["input_ids"]]


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    backbone = backbone.to(device=device, dtype=dtype).eval()
    token_ids = tokenize(tokenizer, texts, max_length)
    inputs = TokenInputs(token_ids, tokenizer.pad_token_id)
    features = torch.zeros(len(texts), int(backbone.config.hidden_size))
    for idx in length_sorted_batches([len(t) for t in token_ids], batch_size):
        batch = {k: v.to(device) for k, v in inputs.batch(idx).items()}
        hidden = backbone(**batch).last_hidden_state
        features[idx] = pool_hidden(hidden, batch["attention_mask"], pooling).float().cpu()
    return features

"""A pretrained backbone with a zero-initialised linear head, and the pooling it uses."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def pool_hidden(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """Mean over real tokens, or the last real token — found from the mask, never a pad id.

    The reference code finds padding by token id 0, which is a real token for some tokenizers.
    """
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    if how == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    if how == "last":
        seq_len = attention_mask.shape[1]
        last = (
            seq_len - 1 - attention_mask.flip(1).long().argmax(1)
        )  # works for either padding side
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling '{how}'")


def unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper; the model itself otherwise."""
    return getattr(model, "module", model)


def zero_head(in_features: int) -> nn.Linear:
    """Zero weights: the untrained classifier predicts 50/50, so early steps are unbiased."""
    head = nn.Linear(in_features, 2)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class ProbeClassifier(nn.Module):
    """Probe mode: a linear head on frozen, precomputed features."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.head = zero_head(in_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.to(self.head.weight.dtype))


class FinetuneClassifier(nn.Module):
    """Fine-tune mode: every backbone weight trains along with the head."""

    def __init__(self, backbone: nn.Module, pooling: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head = zero_head(int(backbone.config.hidden_size))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        pooled = pool_hidden(out.last_hidden_state, attention_mask, self.pooling)
        return self.head(pooled.to(self.head.weight.dtype))


def load_backbone_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:  # decoders ship without one; pooling uses the mask anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(path: str, *, trust_remote_code: bool = False) -> tuple[nn.Module, Any]:
    """Backbone and tokenizer from a hub id or folder; safetensors only, remote code opt-in."""
    from transformers import AutoModel

    tokenizer = load_backbone_tokenizer(path, trust_remote_code)
    model = AutoModel.from_pretrained(
        path, use_safetensors=True, trust_remote_code=trust_remote_code
    )
    return model, tokenizer

"""Activation checkpointing: each transformer block keeps only its input for the backward
pass and recomputes the rest there, trading about a third more compute for activation
memory that no longer grows with depth (a 7B LoRA student at 1024 tokens fits one GPU).

transformers checkpoints blocks only in train mode, and the reference recipe fine-tunes in
eval mode (dropout off), so the blocks are wrapped here instead, whatever the mode. The
arithmetic is the same; no number changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from w2s_ray.errors import UserError


def _checkpointed(forward: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():  # inference keeps nothing for a backward pass
            return forward(*args, **kwargs)
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    return run


def checkpoint_blocks(backbone: nn.Module) -> int:
    """Wrap every outermost transformer block of `backbone` (transformers' checkpointable
    layers); returns how many. A block must not write a key-value cache it would write
    again when recomputed, so the backbone's cache is switched off."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    wrapped: list[str] = []
    for name, module in backbone.named_modules():
        inside = any(name.startswith(f"{outer}.") for outer in wrapped)
        if isinstance(module, GradientCheckpointingLayer) and not inside:
            module.forward = _checkpointed(module.forward)  # type: ignore[method-assign]
            wrapped.append(name)
    if not wrapped:
        kind = type(backbone).__name__
        raise UserError(
            f"resources.activation_checkpointing: {kind} has no blocks transformers can "
            "checkpoint — set `activation_checkpointing: false` for this study"
        )
    config = getattr(backbone, "config", None)
    if config is not None and hasattr(config, "use_cache"):
        config.use_cache = False
    return len(wrapped)

"""Which models vLLM can run, per task, read from a model's config and vLLM's own registry.

`auto` sends a model to vLLM only where this says yes, so an encoder vLLM lacks (MPNet,
DeBERTa) or a head size the CPU kernels lack goes to transformers instead of failing.
The registry is vLLM's; importing it costs seconds, so it is read only where vLLM runs.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch

Task = Literal["pool", "generate"]  # pooled hidden states; next tokens (answers, scores)


@functools.cache
def _registry_archs() -> tuple[frozenset[str], frozenset[str]]:
    """(decoders vLLM generates with, models it pools natively); decoders also pool, through
    vLLM's embedding adapter."""
    from vllm.model_executor.models import registry

    generate = frozenset(getattr(registry, "_TEXT_GENERATION_MODELS", {}))
    pool = frozenset(getattr(registry, "_EMBEDDING_MODELS", {}))
    if not generate:  # the private tables moved: every registered name, decoders by suffix
        names = registry.ModelRegistry.get_supported_archs()
        generate = frozenset(n for n in names if n.endswith(("ForCausalLM", "LMHeadModel")))
        pool = frozenset(names)
    return generate, pool | generate


def _cpu_head_sizes() -> list[int] | None:
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend
    except ImportError:
        return None
    return list(CPUAttentionBackend.get_supported_head_sizes())


def _head_size(config: object) -> int | None:
    explicit = getattr(config, "head_dim", None)
    if explicit:
        return int(explicit)
    hidden = getattr(config, "hidden_size", None)
    heads = getattr(config, "num_attention_heads", None)
    return int(hidden) // int(heads) if hidden and heads else None


@functools.lru_cache(maxsize=64)
def why_not_vllm(model_path: str, task: Task, trust_remote_code: bool = False) -> str | None:
    """None where vLLM can run `model_path` for `task`, else the reason, in a few words."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    archs = list(getattr(config, "architectures", None) or [])
    generate, pool = _registry_archs()
    known = generate if task == "generate" else pool
    if not archs or archs[0] not in known:
        what = "generate with" if task == "generate" else "pool"
        return f"vLLM cannot {what} {archs[0] if archs else 'a model without architectures'}"
    if not torch.cuda.is_available():
        sizes, head = _cpu_head_sizes(), _head_size(config)
        if sizes is not None and head is not None and head not in sizes:
            return f"vLLM's CPU attention has no kernel for heads {head} wide"
    return None

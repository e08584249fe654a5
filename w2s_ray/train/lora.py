"""LoRA fine-tuning: low-rank adapters on a frozen backbone (peft), saved as adapters.

A LoRA classifier trains its adapters and its linear head; nothing else changes. Its
weights file holds those tensors only (megabytes, not the model's gigabytes), marked as an
adapter in the safetensors metadata with the settings that rebuild it; `full_weights`
merges it into the base model for the inference backends, which take whole classifiers.
"""

from __future__ import annotations

import json
import struct
import sys
from dataclasses import asdict, dataclass
from typing import Any

import torch
from safetensors.torch import load, save
from torch import nn

from w2s_ray.errors import UserError
from w2s_ray.train.model import FinetuneClassifier, load_backbone, unwrapped

ADAPTER_FORMAT = "w2s-ray-lora-adapter"  # the `format` entry of an adapter file's metadata
ALL_LINEAR = "all-linear"  # peft's shorthand: every linear layer of the backbone
# Adapted layers per HF config `model_type`: attention and MLP projections, as the LoRA and
# QLoRA papers adapt them. Other families get every linear layer (ALL_LINEAR).
FAMILY_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    # `output.dense` (both of a block's) rather than `dense`: the pooler's is never used
    "bert": ("query", "key", "value", "intermediate.dense", "output.dense"),
    "roberta": ("query", "key", "value", "intermediate.dense", "output.dense"),
    "mpnet": ("q", "k", "v", "o", "intermediate.dense", "output.dense"),
    **{
        family: ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
        for family in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "smollm3")
    },
}


@dataclass(frozen=True)
class LoraSettings:
    """A study's `train.lora`; `target_modules` None means the family default."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None

    def key(self) -> dict[str, Any]:
        return asdict(self)


def family_targets(backbone: nn.Module) -> tuple[str, ...] | str:
    """The layers adapted by default: by the backbone config's `model_type`."""
    model_type = getattr(getattr(backbone, "config", None), "model_type", None)
    return FAMILY_TARGETS.get(str(model_type), ALL_LINEAR)


def _check_targets(backbone: nn.Module, targets: tuple[str, ...], named: bool) -> None:
    """Each target must name a layer (a module name or its dotted tail); peft alone would
    adapt the names that match and skip the rest."""
    names = [n for n, m in backbone.named_modules() if isinstance(m, nn.Linear) or _conv1d(m)]
    for target in targets:
        if not any(n == target or n.endswith(f".{target}") for n in names):
            layers = sorted({n.rsplit(".", 1)[-1] for n in names})
            where = "key 'train.lora.target_modules'" if named else "the family default"
            raise UserError(
                f"{where}: '{target}' matches no linear layer of "
                f"{type(backbone).__name__} — name some of: {', '.join(layers[:12])}"
            )


def _conv1d(module: nn.Module) -> bool:
    return type(module).__name__ == "Conv1D"  # GPT-2's transposed linear layers


def add_adapters(backbone: nn.Module, settings: LoraSettings) -> nn.Module:
    """`backbone` frozen, with trainable LoRA adapters (fp32) on its target layers."""
    from peft import LoraConfig, get_peft_model

    targets = settings.target_modules or family_targets(backbone)
    if not isinstance(targets, str):
        _check_targets(backbone, tuple(targets), settings.target_modules is not None)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        bias="none",
    )
    try:
        return get_peft_model(backbone, config)
    except ValueError as exc:  # peft's "not found in the base model" and kin
        first = str(exc).splitlines()[0]
        raise UserError(f"key 'train.lora': {first} — set train.lora.target_modules") from None


def is_adapted(model: nn.Module) -> bool:
    """Whether `model` (a classifier, or one in a DDP wrapper) carries LoRA adapters."""
    peft = sys.modules.get("peft")  # not imported: nothing can be adapted (probe heads)
    inner = unwrapped(model)
    return peft is not None and isinstance(getattr(inner, "backbone", None), peft.PeftModel)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What trains (adapters and head), by state-dict name: all an adapter file keeps."""
    inner = unwrapped(model)
    return {name: p.detach() for name, p in inner.named_parameters() if p.requires_grad}


def load_trainable(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Restore an adapted classifier's trained tensors; the frozen base stays as loaded."""
    inner = unwrapped(model)
    expected = set(trainable_state(inner))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise RuntimeError(
            f"adapter weights do not fit this model: missing {missing[:3]}, extra {extra[:3]}"
        )
    inner.load_state_dict(state, strict=False)


def load_classifier(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load saved classifier weights: whole, or an adapter file's tensors."""
    if is_adapted(model):
        load_trainable(model, state)
    else:
        unwrapped(model).load_state_dict(state)


def adapter_metadata(model: nn.Module) -> dict[str, str]:
    """Safetensors metadata of an adapted classifier's weights (empty for a whole one):
    that the file is an adapter, and the LoRA settings with the layers actually adapted."""
    if not is_adapted(model):
        return {}
    inner = unwrapped(model)
    config = inner.backbone.peft_config["default"]
    settings = {
        "rank": config.r,
        "alpha": config.lora_alpha,
        "dropout": config.lora_dropout,
        "target_modules": sorted(config.target_modules),
    }
    return {"format": ADAPTER_FORMAT, "lora": json.dumps(settings)}


def adapter_settings(data: bytes) -> LoraSettings | None:
    """The LoRA settings of a weights file's bytes; None for a whole classifier's."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != ADAPTER_FORMAT:
        return None
    lora = json.loads(metadata["lora"])
    return LoraSettings(lora["rank"], lora["alpha"], lora["dropout"], tuple(lora["target_modules"]))


def full_weights(data: bytes, base: str, pooling: str, *, trust_remote_code: bool = False) -> bytes:
    """A whole classifier's weights (safetensors bytes) from an adapter file and the base
    model it was trained on: adapters merged into their layers (peft merge_and_unload).
    A whole classifier's bytes come back unchanged."""
    settings = adapter_settings(data)
    if settings is None:
        return data
    backbone = load_backbone(base, trust_remote_code=trust_remote_code)[0]
    model = FinetuneClassifier(add_adapters(backbone, settings), pooling)
    load_trainable(model, load(data))
    merged = FinetuneClassifier(model.backbone.merge_and_unload(), pooling)
    merged.head = model.head
    return save({k: v.contiguous() for k, v in merged.state_dict().items()})

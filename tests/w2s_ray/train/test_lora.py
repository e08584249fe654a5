"""LoRA fine-tunes of tiny real decoders: what trains, what is saved, what a resume restores,
and that an adapter file labels as its merged model does through the transformers backend."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load, save

from w2s_ray.errors import UserError
from w2s_ray.infer.backend import ClassifierRef
from w2s_ray.infer.hf import classify
from w2s_ray.train.inputs import TokenInputs
from w2s_ray.train.loop import TrainConfig, fit, predict_probs
from w2s_ray.train.lora import (
    ADAPTER_FORMAT,
    LoraSettings,
    adapter_metadata,
    adapter_settings,
    add_adapters,
    full_weights,
    is_adapted,
    load_classifier,
)
from w2s_ray.train.model import FinetuneClassifier, load_backbone
from w2s_ray.train.state import WholeState

TEXTS = [f"good great fine {i}" if i % 2 else f"bad awful poor {i}" for i in range(24)]
CFG = TrainConfig(epochs=2, lr=5e-3, batch_size=8, seed=1, lora=LoraSettings())


def _classifier(path: Path, settings: LoraSettings | None = CFG.lora) -> FinetuneClassifier:
    torch.manual_seed(0)  # LoRA's A matrices are drawn at random
    backbone = load_backbone(str(path))[0]
    if settings is not None:
        backbone = add_adapters(backbone, settings)
    return FinetuneClassifier(backbone, "last")


def _data(path: Path) -> tuple[TokenInputs, torch.Tensor]:
    tokenizer = load_backbone(str(path))[1]
    ids = [tokenizer(t)["input_ids"] for t in TEXTS]
    labels = torch.tensor([i % 2 for i in range(len(TEXTS))])
    return TokenInputs(ids, tokenizer.pad_token_id), torch.nn.functional.one_hot(labels, 2).float()


class MemoryCheckpointer:
    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    def save(self, state: dict[str, Any]) -> None:
        self.state = copy.deepcopy(state)

    def load(self) -> dict[str, Any] | None:
        return self.state


@pytest.mark.parametrize("arch", ["tiny-llama", "tiny-gpt2"])
def test_only_adapters_and_head_train_and_are_saved(tiny_decoders, arch):
    path = tiny_decoders[arch]
    pretrained = load_backbone(str(path))[0].state_dict()
    model = _classifier(path)
    inputs, targets = _data(path)
    fit(model, inputs, targets, CFG)
    state = WholeState().model_state(model)
    assert state and all("lora_" in k or k.startswith("head.") for k in state), list(state)
    assert {"head.weight", "head.bias"} <= set(state)
    # the family default adapted attention and MLP layers of every block
    adapted = {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in state if "lora_A" in k}
    expected = {"tiny-llama": {"q_proj", "v_proj", "down_proj"}, "tiny-gpt2": {"c_attn", "c_fc"}}
    assert expected[arch] <= adapted
    assert any(v.abs().sum() > 0 for k, v in state.items() if "lora_B" in k)  # they trained
    # the frozen base is the pretrained model, weight for weight
    base = model.backbone.get_base_model().state_dict()
    for name, value in pretrained.items():
        key = next(k for k in base if k.replace(".base_layer", "") == name)
        assert torch.equal(base[key], value), name
    # the adapter file: trainable tensors plus what rebuilds them, nothing of the base
    data = save({k: v.contiguous() for k, v in state.items()}, adapter_metadata(model))
    assert _metadata(data)["format"] == ADAPTER_FORMAT
    settings = adapter_settings(data)
    assert settings is not None and settings.rank == 8 and settings.alpha == 16
    base_bytes = sum(v.numel() for v in pretrained.values())
    assert sum(v.numel() for v in load(data).values()) < base_bytes / 4  # rank 8 of width 128


def _metadata(data: bytes) -> dict[str, str]:
    """A safetensors file's metadata, read as the format lays it out (a JSON header)."""
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]).get("__metadata__", {})


def test_labels_from_the_adapter_file_match_the_merged_model_through_transformers(
    tiny_decoders,
):
    path = tiny_decoders["tiny-llama"]
    model = _classifier(path)
    inputs, targets = _data(path)
    fit(model, inputs, targets, CFG)
    expected = predict_probs(model, inputs)
    adapter = save(
        {k: v.contiguous() for k, v in WholeState().model_state(model).items()},
        adapter_metadata(model),
    )
    whole = full_weights(adapter, str(path), "last")
    assert adapter_settings(whole) is None  # merged: an ordinary classifier's weights
    assert not any("lora" in k for k in load(whole))
    probs = classify(ClassifierRef(str(path), "last", whole), TEXTS, max_length=32)
    assert torch.allclose(probs, expected, atol=1e-5)
    assert (probs[:, 1] > 0.5).float().mean() not in (0.0, 1.0)  # not a constant classifier
    # a whole classifier's bytes pass through unchanged
    assert full_weights(whole, str(path), "last") is whole


def test_an_adapter_file_reloads_into_a_fresh_lora_model(tiny_decoders):
    path = tiny_decoders["tiny-gpt2"]
    model = _classifier(path)
    inputs, targets = _data(path)
    fit(model, inputs, targets, CFG)
    state = load(save({k: v.contiguous() for k, v in WholeState().model_state(model).items()}))
    fresh = _classifier(path)
    assert is_adapted(fresh)
    load_classifier(fresh, state)
    assert torch.equal(predict_probs(fresh, inputs), predict_probs(model, inputs))
    with pytest.raises(RuntimeError, match="do not fit"):
        load_classifier(fresh, {**state, "backbone.extra": torch.zeros(1)})


class Killed(Exception):
    pass


@pytest.mark.parametrize("kill_at_step", [2, 4])
def test_a_lora_fine_tune_resumes_to_the_same_weights(tiny_decoders, kill_at_step):
    path = tiny_decoders["tiny-llama"]
    inputs, targets = _data(path)
    cfg = TrainConfig(
        epochs=2, lr=5e-3, batch_size=8, seed=1, dropout=True, lora=LoraSettings(dropout=0.2)
    )
    uninterrupted = WholeState().model_state(fit(_classifier(path, cfg.lora), inputs, targets, cfg))

    class KillingInputs(TokenInputs):
        calls = 0

        def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
            KillingInputs.calls += 1
            if KillingInputs.calls == kill_at_step + 1:
                raise Killed
            return super().batch(indices)

    checkpointer = MemoryCheckpointer()
    killing = KillingInputs(inputs.token_ids, inputs.pad_id)
    with pytest.raises(Killed):
        fit(_classifier(path, cfg.lora), killing, targets, cfg, checkpointer, checkpoint_seconds=0)
    assert checkpointer.state is not None
    # the checkpoint holds what trains: adapters, head and their Adam moments
    saved = checkpointer.state["model"]
    assert all("lora_" in k or k.startswith("head.") for k in saved)
    assert len(checkpointer.state["optimizer"]["state"]) == len(saved)
    torch.manual_seed(123)  # a resume must not depend on the RNG it starts with
    resumed = fit(_classifier(path, cfg.lora), inputs, targets, cfg, checkpointer)
    final = WholeState().model_state(resumed)
    assert final.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():
        assert torch.equal(final[name], value), name


def test_a_target_module_that_matches_nothing_is_refused_before_training(tiny_decoders):
    backbone = load_backbone(str(tiny_decoders["tiny-gpt2"]))[0]
    with pytest.raises(UserError, match=r"train.lora.target_modules.*'q_proj'.*c_attn"):
        add_adapters(backbone, LoraSettings(target_modules=("c_attn", "q_proj")))
    adapted = add_adapters(backbone, LoraSettings(target_modules=("attn.c_attn",)))
    assert any("c_attn.lora_A" in k for k in adapted.state_dict())

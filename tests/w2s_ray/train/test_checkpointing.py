"""Activation checkpointing: the same gradients and trained weights as without it, in the
reference recipe's eval mode (where transformers' own checkpointing stays off), and in the
cost model a fraction of the activation memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from w2s_ray.models import MODELS
from w2s_ray.study.cost import training_bytes
from w2s_ray.study.work import Train
from w2s_ray.train.checkpointing import checkpoint_blocks
from w2s_ray.train.inputs import TokenInputs
from w2s_ray.train.loop import NullReporter, TrainConfig, fit, predict_probs
from w2s_ray.train.lora import LoraSettings, add_adapters
from w2s_ray.train.model import FinetuneClassifier, load_backbone

GIB = 2**30
TEXTS = [f"good great fine {i}" if i % 2 else f"bad awful poor {i}" for i in range(16)]


class _Saved:
    def save(self, state):  # no checkpoints in these short runs
        pass

    def load(self):
        return None

    def clear(self):
        pass


def _count_first_block(backbone: torch.nn.Module, runs: list[int]) -> None:
    """Count the runs of the first block's own forward (a recompute runs it again)."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    block = next(m for m in backbone.modules() if isinstance(m, GradientCheckpointingLayer))
    forward = block.forward

    def counted(*args, **kwargs):
        runs.append(1)
        return forward(*args, **kwargs)

    block.forward = counted


def _classifier(
    path: Path, checkpointed: bool, lora: bool, runs: list[int] | None = None
) -> FinetuneClassifier:
    torch.manual_seed(0)
    backbone = load_backbone(str(path))[0]
    if runs is not None:
        _count_first_block(backbone, runs)
    if checkpointed:
        assert checkpoint_blocks(backbone) == backbone.config.num_hidden_layers
    if lora:
        backbone = add_adapters(backbone, LoraSettings(rank=4))
    return FinetuneClassifier(backbone, "last")


def _batch(path: Path) -> tuple[TokenInputs, torch.Tensor]:
    tokenizer = load_backbone(str(path))[1]
    ids = [tokenizer(t)["input_ids"] for t in TEXTS]
    labels = torch.tensor([i % 2 for i in range(len(TEXTS))])
    return TokenInputs(ids, tokenizer.pad_token_id), torch.nn.functional.one_hot(labels, 2).float()


def _grads(model: torch.nn.Module, inputs: TokenInputs, targets: torch.Tensor) -> dict:
    """Gradients of one step in eval mode."""
    model.eval()  # the reference recipe: dropout off while training
    batch = inputs.batch(torch.arange(len(inputs)))
    loss = -(targets * torch.log_softmax(model(**batch), -1)).sum(-1).mean()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ["tiny-llama", "tiny-gpt2"])
@pytest.mark.parametrize("lora", [False, True])
def test_checkpointed_blocks_give_the_same_gradients(tiny_decoders, arch, lora):
    path = tiny_decoders[arch]
    inputs, targets = _batch(path)
    plain_runs: list[int] = []
    recomputed_runs: list[int] = []
    plain = _grads(_classifier(path, False, lora, plain_runs), inputs, targets)
    checkpointed = _grads(_classifier(path, True, lora, recomputed_runs), inputs, targets)
    assert (len(plain_runs), len(recomputed_runs)) == (1, 2)  # run again in the backward
    assert plain.keys() == checkpointed.keys() and plain
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_a_checkpointed_fine_tune_trains_to_the_same_weights(tiny_decoders):
    path = tiny_decoders["tiny-llama"]
    inputs, targets = _batch(path)
    cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=8, seed=0)
    trained = []
    for checkpointed in (False, True):
        model = _classifier(path, checkpointed, lora=False)
        fit(model, inputs, targets, cfg, _Saved(), NullReporter())
        trained.append((model.state_dict(), predict_probs(model, inputs)))
    (plain, plain_probs), (ckpt, ckpt_probs) = trained
    torch.testing.assert_close(ckpt_probs, plain_probs, rtol=1e-5, atol=1e-6)
    for name, tensor in plain.items():
        torch.testing.assert_close(ckpt[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_a_model_without_checkpointable_blocks_is_named():
    from w2s_ray.errors import UserError

    with pytest.raises(UserError, match="activation_checkpointing: false"):
        checkpoint_blocks(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_checkpointing_lets_a_7b_lora_student_take_long_inputs_on_one_gpu():
    card = MODELS.get("Qwen2.5-7B")
    long = training_bytes(card, 32, 1024, lora_rank=8) / GIB
    checkpointed = training_bytes(card, 32, 1024, lora_rank=8, checkpointed=True) / GIB
    assert long > 80 > checkpointed
    short = training_bytes(card, 32, 128, lora_rank=8, checkpointed=True)
    assert short < training_bytes(card, 32, 128, lora_rank=8)
    # and it costs one forward more per step
    assert Train(1, 1, 1, lora_rank=8, checkpointed=True).flops_per_param_token == 6.0
    assert Train(1, 1, 1, checkpointed=True).flops_per_param_token == 8.0

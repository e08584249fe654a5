"""Fine-tuning on CUDA: bf16 autocast over fp32 weights learns, and what it saves predicts
the same in every place that reads it.

Skipped on a CPU-only machine. Inference in bf16 on a GPU is held to the fp32 reference by
the backend contract (tests/w2s_ray/infer/test_backend_contract.py), which runs there too.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save

from w2s_ray.infer.backend import ClassifierRef
from w2s_ray.infer.hf import TransformersBackend
from w2s_ray.train.inputs import TokenInputs
from w2s_ray.train.loop import TrainConfig, fit, predict_probs
from w2s_ray.train.model import FinetuneClassifier, load_backbone

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

BF16_PROB_TOLERANCE = 0.02  # bf16 keeps 8 mantissa bits: ~0.4% per rounding


def _toy_rows(toy_dataset) -> tuple[list[str], torch.Tensor]:
    rows = [json.loads(line) for line in toy_dataset.read_text().splitlines()]
    labels = torch.tensor([r["label"] for r in rows])
    return [r["text"] for r in rows], labels


def test_bf16_finetune_on_cuda_learns_and_reloads_on_cpu(tiny_models, toy_dataset) -> None:
    """Autocast trains fp32 master weights: the saved weights predict the same on CPU."""
    texts, labels = _toy_rows(toy_dataset)
    backbone, tokenizer = load_backbone(str(tiny_models["tiny-l"]))
    torch.manual_seed(0)
    model = FinetuneClassifier(backbone, "mean").cuda()
    ids = tokenizer(texts, truncation=True, max_length=32)["input_ids"]
    inputs = TokenInputs(ids, tokenizer.pad_token_id)
    targets = torch.nn.functional.one_hot(labels, 2).float()
    cfg = TrainConfig(epochs=8, lr=3e-3, batch_size=16, seed=0)
    fit(model, inputs, targets, cfg)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    gpu_probs = predict_probs(model, inputs)
    accuracy = (gpu_probs.argmax(1) == labels).float().mean().item()
    assert accuracy > 0.8, f"bf16 fine-tune reached only {accuracy:.2f} on 90%-clean toy data"

    weights = save({k: v.cpu() for k, v in model.state_dict().items()})
    ref = ClassifierRef(backbone=str(tiny_models["tiny-l"]), pooling="mean", weights=weights)
    reloaded = TransformersBackend().label(ref, texts, max_length=32)  # bf16 on the GPU again
    torch.testing.assert_close(reloaded, gpu_probs, atol=BF16_PROB_TOLERANCE, rtol=0)
    cpu_model = FinetuneClassifier(load_backbone(str(tiny_models["tiny-l"]))[0], "mean")
    cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    cpu_probs = predict_probs(cpu_model, inputs)
    torch.testing.assert_close(cpu_probs, gpu_probs, atol=BF16_PROB_TOLERANCE, rtol=0)

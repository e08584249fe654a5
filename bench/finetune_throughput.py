"""Fine-tuning speed: tokens/s through w2s-ray's training loop, and the fraction of this
machine's measured matmul rate that reaches (model FLOPs utilisation).

python bench/finetune_throughput.py                          # CPU-sized presets
python bench/finetune_throughput.py --presets mpnet-base qwen2.5-0.5b --batch 32 --seq 256

Models are built from their published configurations with random weights (speed does not
depend on the values), wrapped in the classifier the studies train, and trained by
`w2s_ray.train.loop.fit` itself: bf16 autocast on a GPU, fp32 on CPU. FLOPs per token are
6 × the parameters that multiply (embeddings only look up, so they are left out), the
usual estimate for a forward and backward pass (Kaplan et al. 2020); attention's own
quadratic term is ignored, which undercounts by under 10% at these lengths. The matmul
rate is measured here, on square products in the training dtype, not taken from a sheet.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

# Published architectures (the models' config.json files), random weights.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "minilm-l6": (
        "bert",
        {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
         "intermediate_size": 1536, "vocab_size": 30522},
    ),
    "mpnet-base": (
        "mpnet",
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
         "intermediate_size": 3072, "vocab_size": 30527},
    ),
    "smollm2-135m": (
        "llama",
        {"hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
         "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152},
    ),
    "qwen2.5-0.5b": (
        "qwen2",
        {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
         "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936},
    ),
    "pythia-1.4b": (
        "gpt_neox",
        {"hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 16,
         "intermediate_size": 8192, "vocab_size": 50304},
    ),
}  # fmt: skip
POOLING = {"bert": "mean", "mpnet": "mean", "llama": "last", "qwen2": "last", "gpt_neox": "last"}


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def matmul_rate(dev: torch.device) -> float:
    """Best FLOP/s of a square product in the dtype training multiplies in."""
    n, dtype = (8192, torch.bfloat16) if dev.type == "cuda" else (1024, torch.float32)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        _sync(dev)
        started = time.perf_counter()
        for _ in range(4):
            a @ b
        _sync(dev)
        best = min(best, (time.perf_counter() - started) / 4)
    return 2 * n**3 / best


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def build(preset: str, dev: torch.device) -> tuple[torch.nn.Module, int, int]:
    """The classifier, its multiplying parameters, its vocabulary size."""
    from transformers import AutoConfig, AutoModel

    from w2s_ray.train.model import FinetuneClassifier

    model_type, sizes = PRESETS[preset]
    config = AutoConfig.for_model(model_type, max_position_embeddings=2048, **sizes)
    torch.manual_seed(0)
    backbone = AutoModel.from_config(config)
    model = FinetuneClassifier(backbone, POOLING[model_type]).to(dev)
    embedding_params = sum(p.numel() for name, p in model.named_parameters() if "embed" in name)
    multiplying = sum(p.numel() for p in model.parameters()) - embedding_params
    return model, multiplying, int(sizes["vocab_size"])


def tokens_per_second(preset: str, batch: int, seq: int, steps: int, dev: torch.device):
    from w2s_ray.train.inputs import TokenInputs
    from w2s_ray.train.loop import TrainConfig, fit

    model, params, vocab = build(preset, dev)
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(5, vocab, (batch * (steps + 2), seq), generator=gen).tolist()
    targets = torch.softmax(torch.randn(len(rows), 2, generator=gen), -1)
    warm = TokenInputs(rows[: 2 * batch], pad_id=0)
    fit(model, warm, targets[: 2 * batch], TrainConfig(1, 1e-5, batch, 0))  # kernels, allocator
    timed = TokenInputs(rows[2 * batch :], pad_id=0)
    _sync(dev)
    started = time.perf_counter()
    fit(model, timed, targets[2 * batch :], TrainConfig(1, 1e-5, batch, 0))
    _sync(dev)
    elapsed = time.perf_counter() - started
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f}" if dev.type == "cuda" else "-"
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return params, steps * batch * seq / elapsed, elapsed / steps, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    dev = device()
    on_gpu = dev.type == "cuda"
    presets = args.presets or (list(PRESETS) if on_gpu else ["minilm-l6", "smollm2-135m"])
    batch = args.batch or (32 if on_gpu else 8)
    steps = args.steps or (20 if on_gpu else 3)
    name = torch.cuda.get_device_name() if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    rate = matmul_rate(dev)
    dtype = "bf16 autocast" if on_gpu else "fp32"
    print(f"{name}; {dtype}; measured matmul {rate / 1e12:.1f} TFLOP/s")
    print(f"batch {batch} × {args.seq} tokens, {steps} timed steps\n")
    print("| model | params (non-embedding) | s/step | tokens/s | TFLOP/s | of matmul | peak GiB |")
    print("|---|---|---|---|---|---|---|")
    for preset in presets:
        params, tps, step_s, peak = tokens_per_second(preset, batch, args.seq, steps, dev)
        achieved = 6 * params * tps
        print(
            f"| {preset} | {params / 1e6:.0f}M | {step_s:.3f} | {tps:,.0f} | "
            f"{achieved / 1e12:.2f} | {achieved / rate:.0%} | {peak} |"
        )


if __name__ == "__main__":
    main()

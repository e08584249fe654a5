"""LoRA fine-tuning cost: peak memory, step time, trainable parameters and adapter file size
of a LoRA classifier trained by w2s-ray's own loop, beside the cost model's estimate.

python bench/lora_memory.py                                   # a tiny Llama, CPU-sized
python bench/lora_memory.py --models qwen2.5-0.5b qwen2.5-7b --batch 32 --seq 128 --dtype bf16
python bench/lora_memory.py --models /path/to/hf/folder --full   # also a full fine-tune

A name from PRESETS is built from its published configuration with random weights, on
the device itself (memory and speed do not depend on the values); a folder loads its real
weights. The classifier, adapters (w2s_ray.train.lora, the family's default layers) and
`w2s_ray.train.loop.fit` are what studies run: bf16 autocast on a GPU, fp32 on CPU. Peak
memory is torch's allocator peak (GPU only; the CUDA context is extra). The adapter file
is the bytes a study would write (trainable tensors and their metadata).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from finetune_throughput import PRESETS as THROUGHPUT_PRESETS
from finetune_throughput import device

# the throughput bench's published architectures, with a tiny model and the 7B student
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    **THROUGHPUT_PRESETS,
    "tiny-llama": (
        "llama",
        {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
         "num_key_value_heads": 1, "intermediate_size": 256, "vocab_size": 1000},
    ),
    "qwen2.5-7b": (
        "qwen2",
        {"hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28,
         "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064},
    ),
}  # fmt: skip


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def backbone(name: str, dev: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModel

    if name not in PRESETS:  # a model folder or hub id: its real weights
        return AutoModel.from_pretrained(name, use_safetensors=True, dtype=dtype).to(dev)
    model_type, sizes = PRESETS[name]
    config = AutoConfig.for_model(model_type, max_position_embeddings=2048, **sizes)
    torch.manual_seed(0)
    with dev:  # drawn where it trains: a 7B model is not first built in host memory
        return AutoModel.from_config(config, dtype=dtype)


def estimate_gib(model: torch.nn.Module, rank: int | None, batch: int, seq: int) -> float:
    """The cost model's training peak for this shape (w2s_ray.study.cost.training_bytes)."""
    from w2s_ray.models import ModelCard
    from w2s_ray.study.cost import training_bytes

    config = model.config
    params = sum(p.numel() for p in model.parameters())
    card = ModelCard(
        "bench", "bench", "bench", "decoder", params, 1.0, "-",
        layers=config.num_hidden_layers, hidden=config.hidden_size,
    )  # fmt: skip
    return training_bytes(card, batch, seq, rank) / 2**30


def measure(
    name: str, lora: bool, rank: int, batch: int, seq: int, steps: int, dtype: torch.dtype
) -> dict[str, Any]:
    from safetensors.torch import save

    from w2s_ray.train.inputs import TokenInputs
    from w2s_ray.train.loop import TrainConfig, fit
    from w2s_ray.train.lora import LoraSettings, adapter_metadata, add_adapters
    from w2s_ray.train.model import FinetuneClassifier
    from w2s_ray.train.state import WholeState

    dev = device()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    base = backbone(name, dev, dtype)
    estimate = estimate_gib(base, rank if lora else None, batch, seq)
    settings = LoraSettings(rank=rank, alpha=2.0 * rank)
    model = FinetuneClassifier(add_adapters(base, settings) if lora else base, "last").to(dev)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    vocab = int(model.backbone.config.vocab_size)
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(5, vocab, (batch * (steps + 1), seq), generator=gen).tolist()
    targets = torch.softmax(torch.randn(len(rows), 2, generator=gen), -1)
    cfg = TrainConfig(1, 1e-5, batch, 0, lora=settings if lora else None)
    fit(model, TokenInputs(rows[:batch], pad_id=0), targets[:batch], cfg)  # kernels, allocator
    _sync(dev)
    started = time.perf_counter()
    fit(model, TokenInputs(rows[batch:], pad_id=0), targets[batch:], cfg)
    _sync(dev)
    step_s = (time.perf_counter() - started) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None
    state = {k: v.detach().cpu().contiguous() for k, v in WholeState().model_state(model).items()}
    file_bytes = len(save(state, adapter_metadata(model) or None))
    del model, base
    return {
        "model": name,
        "mode": f"LoRA r={rank}" if lora else "full",
        "params": total,
        "trainable": trainable,
        "peak": peak,
        "estimate": estimate,
        "step_s": step_s,
        "file_mb": file_bytes / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny-llama"])
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="frozen base")
    parser.add_argument("--full", action="store_true", help="also a full fine-tune, to compare")
    args = parser.parse_args()
    dev = device()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    name = (
        torch.cuda.get_device_name()
        if dev.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"{name}; base weights {args.dtype}; batch {args.batch} × {args.seq} tokens, "
          f"{args.steps} timed steps\n")  # fmt: skip
    columns = "model | mode | params | trainable | peak GiB | estimated GiB | s/step | file MB"
    print(f"| {columns} |")
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models:
        for lora in (True, False) if args.full else (True,):
            try:
                row = measure(model, lora, args.rank, args.batch, args.seq, args.steps, dtype)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                mode = f"LoRA r={args.rank}" if lora else "full"
                print(f"| {model} | {mode} | out of device memory | | | | | |")
                continue
            peak = "-" if row["peak"] is None else f"{row['peak']:.1f}"
            print(
                f"| {row['model']} | {row['mode']} | {row['params'] / 1e6:,.1f}M | "
                f"{row['trainable'] / 1e6:,.2f}M | {peak} | {row['estimate']:.1f} | "
                f"{row['step_s']:.3f} | {row['file_mb']:,.2f} |"
            )


if __name__ == "__main__":
    main()

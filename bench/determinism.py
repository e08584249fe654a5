"""Is fine-tuning bit-for-bit repeatable here? Trains the same model twice, same seeds.

python bench/determinism.py                  # minilm-l6 shape, random weights
python bench/determinism.py --preset smollm2-135m --steps 20

Each run starts from the same weights and seeds (data order, dropout) and goes through
`w2s_ray.train.loop.fit`; the table gives the largest weight and probability differences
between the two runs, with PyTorch's default kernels and with
`torch.use_deterministic_algorithms(True)`. On CPU both are exactly 0. On CUDA, kernels
that sum with atomic adds (the embedding gradient when a token occurs three or more times
in a batch, some attention backward kernels, index_add) may sum in another order each run;
the deterministic setting rules them out at some cost in speed (last column). The numbers
measured so far, on CPU and on an H100, are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from finetune_throughput import build, device

from w2s_ray.train.inputs import TokenInputs
from w2s_ray.train.loop import TrainConfig, fit, predict_probs


def one_run(preset: str, rows: list[list[int]], targets: torch.Tensor, batch: int):
    dev = device()
    model, _, _ = build(preset, dev)  # seeds itself: identical initial weights
    for module in model.modules():  # dropout on, so the RNG streams are compared too
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1
    torch.manual_seed(1)
    inputs = TokenInputs(rows, pad_id=0)
    started = time.perf_counter()
    fit(model, inputs, targets, TrainConfig(epochs=1, lr=1e-4, batch_size=batch, seed=0))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    weights = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    return weights, predict_probs(model, inputs), elapsed


def compare(preset: str, rows: list[list[int]], targets: torch.Tensor, batch: int):
    first, probs_a, time_a = one_run(preset, rows, targets, batch)
    second, probs_b, time_b = one_run(preset, rows, targets, batch)
    weight_gap = max((first[k] - second[k]).abs().max().item() for k in first)
    return weight_gap, (probs_a - probs_b).abs().max().item(), (time_a + time_b) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minilm-l6")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=64)
    args = parser.parse_args()
    dev = device()
    vocab = build(args.preset, torch.device("cpu"))[2]
    gen = torch.Generator().manual_seed(0)
    # from 1,000 ids, so that tokens repeat within a batch as they do in text
    common = min(vocab, 1000)
    rows = torch.randint(5, common, (args.batch * args.steps, args.seq), generator=gen).tolist()
    targets = torch.softmax(torch.randn(len(rows), 2, generator=gen), -1)
    where = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    print(f"{args.preset}, {args.steps} steps of {args.batch} × {args.seq} tokens on {where}\n")
    print("| kernels | max |Δ weight| | max |Δ prob| | identical | s per run |")
    print("|---|---|---|---|---|")
    one_run(args.preset, rows[: args.batch], targets[: args.batch], args.batch)  # warm-up
    for label, deterministic in (("default", False), ("deterministic", True)):
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it
        torch.use_deterministic_algorithms(deterministic)
        try:
            weight_gap, prob_gap, seconds = compare(args.preset, rows, targets, args.batch)
        except RuntimeError as error:  # an op with no deterministic kernel says so
            print(f"| {label} | error: {str(error).splitlines()[0]} | | | |")
            continue
        same = "yes" if weight_gap == 0 and prob_gap == 0 else "no"
        print(f"| {label} | {weight_gap:.2e} | {prob_gap:.2e} | {same} | {seconds:.2f} |")


if __name__ == "__main__":
    main()

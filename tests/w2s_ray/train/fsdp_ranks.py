"""Run by test_fsdp_state.py: one fine-tune on N gloo processes (FSDP), or on one process.

A script, not a test module: spawned ranks must import it by path. Usage:
    python fsdp_ranks.py OUT_DIR WORLD [--stop-after-epoch K] [--select]
Rank 0 keeps the checkpoint in OUT_DIR/checkpoint.pt and the final weights in
OUT_DIR/weights.pt; a stopped run leaves only the checkpoint, as a preempted job would.
With --select, epochs are also scored on held-out rows (w2s-ray's BestEpoch) and rank 0
writes the choice to OUT_DIR/chosen.json and its weights to OUT_DIR/chosen.pt.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import multiprocessing

from w2s_ray.study.selection import BestEpoch
from w2s_ray.study.store import StudyStore
from w2s_ray.train.inputs import TokenInputs
from w2s_ray.train.loop import TrainConfig, fit
from w2s_ray.train.model import FinetuneClassifier
from w2s_ray.train.state import ShardedState, WholeState, shard_model

# 41 rows in batches of 5: shards of 3 and 2, then a last batch of 1 that leaves rank 1 a
# zero-weight filler row; logconf's whole-batch threshold needs every rank's rows
CFG = TrainConfig(epochs=3, lr=3e-3, batch_size=5, seed=5, loss="logconf")


class Stopped(Exception):
    pass


class FileCheckpointer:
    def __init__(self, path: Path, rank: int) -> None:
        self.path, self.rank = path, rank

    def save(self, state: dict[str, Any]) -> None:
        assert self.rank == 0, "only rank 0 may write"
        torch.save(state, self.path.with_suffix(".tmp"))
        self.path.with_suffix(".tmp").replace(self.path)

    def load(self) -> dict[str, Any] | None:
        return torch.load(self.path, weights_only=False) if self.path.exists() else None


class StopAfter:
    def __init__(self, epochs: int | None) -> None:
        self.epochs = epochs

    def report(self, metrics: dict[str, float]) -> None:
        if self.epochs is not None and metrics["epoch"] >= self.epochs:
            raise Stopped


def build() -> tuple[FinetuneClassifier, TokenInputs, torch.Tensor]:
    """A two-block BERT (unused pooler included, as real encoders have) and 41 texts."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = FinetuneClassifier(BertModel(config), "mean")
    gen = torch.Generator().manual_seed(1)
    ids = [
        torch.randint(1, 50, (int(n),), generator=gen).tolist()
        for n in torch.randint(3, 12, (41,), generator=gen)
    ]
    p1 = torch.tensor([float(sum(row) % 2) * 0.8 + 0.1 for row in ids])
    return model, TokenInputs(ids, 0), torch.stack([1 - p1, p1], dim=1)


def train(rank: int, world: int, out: Path, stop_after: int | None, select: bool) -> None:
    torch.set_num_threads(1)
    model, inputs, targets = build()
    access: Any = WholeState()
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["FSDP_TEST_PORT"])
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model, access = shard_model(model, torch.device("cpu")), ShardedState()
    best = None
    if select:
        held = TokenInputs(inputs.token_ids[:12], 0)
        best = BestEpoch(
            StudyStore(out), "job", "", held, targets[:12].argmax(1), rank=rank, access=access
        )
    try:
        fit(
            model,
            inputs,
            targets,
            CFG,
            FileCheckpointer(out / "checkpoint.pt", rank),
            StopAfter(stop_after),
            shard=(rank, world),
            state_access=access,
            checkpoint_seconds=0.0,
            on_epoch_end=best,
        )  # a save at every step: the gathers must stay in step
        weights = access.model_state(model)
    except Stopped:
        weights = None
    finally:
        if world > 1:
            # both ranks stop at the same epoch; without the barrier one may tear gloo down
            # while the other still finishes its last gather, and that rank aborts
            dist.barrier()
            dist.destroy_process_group()
    if rank == 0 and weights is not None:
        torch.save(weights, out / "weights.pt")
    if rank == 0 and best is not None:
        epoch, score, chosen = best.chosen()
        (out / "chosen.json").write_text(json.dumps({"epoch": epoch, "score": score}))
        torch.save(chosen, out / "chosen.pt")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("world", type=int)
    parser.add_argument("--stop-after-epoch", type=int)
    parser.add_argument("--select", action="store_true")
    args = parser.parse_args()
    run_args = (args.out, args.stop_after_epoch, args.select)
    if args.world == 1:
        train(0, 1, *run_args)
    else:
        multiprocessing.spawn(train, args=(args.world, *run_args), nprocs=args.world)

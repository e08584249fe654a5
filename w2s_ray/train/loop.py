"""One fine-tune: optimizer, schedule, epochs, checkpoints. Plain PyTorch; knows nothing of Ray.

Resume restores everything that changes the numbers (model, optimizer, scheduler, step, RNG),
and each epoch's data order comes from (seed, epoch), so a redone epoch is the same epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from w2s_ray.errors import UserError
from w2s_ray.train.inputs import Inputs
from w2s_ray.train.losses import build_loss


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    lr: float
    batch_size: int
    seed: int
    loss: str = "xent"
    loss_options: dict[str, Any] = field(default_factory=dict)
    weight_decay: float = 0.0
    lr_warmup_frac: float = 0.05


class Checkpointer(Protocol):
    def save(self, state: dict[str, Any]) -> None: ...

    def load(self) -> dict[str, Any] | None: ...


class Reporter(Protocol):
    def report(self, metrics: dict[str, float]) -> None: ...


class NullCheckpointer:
    def save(self, state: dict[str, Any]) -> None:
        return None

    def load(self) -> dict[str, Any] | None:
        return None


class NullReporter:
    def report(self, metrics: dict[str, float]) -> None:
        return None


def _schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int) -> Any:
    """Linear warm-up, then cosine decay to zero: the usual recipe for fine-tuning."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(
    model: nn.Module,
    inputs: Inputs,
    targets: torch.Tensor,
    cfg: TrainConfig,
    checkpointer: Checkpointer | None = None,
    reporter: Reporter | None = None,
) -> nn.Module:
    """Train `model` on `targets` ([N, 2] probabilities); resumes from the last checkpoint."""
    if cfg.lr <= 0 or cfg.epochs <= 0 or cfg.batch_size <= 0:
        raise UserError(f"train: lr, epochs and batch_size must be positive (got {cfg})")
    checkpointer = checkpointer or NullCheckpointer()
    reporter = reporter or NullReporter()
    loss_fn = build_loss(cfg.loss, cfg.loss_options)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(inputs) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = _schedule(optimizer, total, int(cfg.lr_warmup_frac * total))
    start_epoch, step = 0, 0
    state = checkpointer.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step = state["epoch"], state["step"]
        torch.set_rng_state(state["torch_rng"])
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        order = torch.randperm(
            len(inputs), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        )
        epoch_loss = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            logits = model(**inputs.batch(idx))
            loss = loss_fn(logits, targets[idx], step / max(1, total))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch}, step {step}: lower the learning "
                    f"rate (now {cfg.lr}) or check the inputs for NaN/inf"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            epoch_loss += loss.item() * len(idx)
        reporter.report({"epoch": epoch + 1, "train_loss": epoch_loss / len(inputs)})
        checkpointer.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "step": step,
                "torch_rng": torch.get_rng_state(),
            }
        )
    model.eval()
    return model


@torch.inference_mode()
def predict_probs(model: nn.Module, inputs: Inputs, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities [N, 2] in input order."""
    model.eval()
    out = []
    for start in range(0, len(inputs), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(inputs)))
        out.append(torch.softmax(model(**inputs.batch(idx)).float(), dim=-1))
    return torch.cat(out)

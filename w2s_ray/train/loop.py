"""One fine-tune: optimizer, schedule, epochs, checkpoints. Plain PyTorch; knows nothing of Ray.

Resume restores everything that changes the numbers (model, optimizer, scheduler, step, RNG),
and each epoch's data order comes from (seed, epoch), so a redone epoch is the same epoch.

The defaults are the reference code's recipe (openai/weak-to-strong, weak_to_strong/train.py):
dropout off while training (the model stays in eval mode, gradients on), a cosine schedule
with no warm-up, and no gradient clipping. Each can be switched back in `TrainConfig`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from w2s_ray.errors import UserError
from w2s_ray.train.collective import all_rows, local_rows, no_rows
from w2s_ray.train.inputs import Inputs
from w2s_ray.train.lora import LoraSettings
from w2s_ray.train.losses import build_loss
from w2s_ray.train.state import StateAccess, WholeState


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    lr: float
    batch_size: int
    seed: int
    loss: str = "xent"
    loss_options: dict[str, Any] = field(default_factory=dict)
    weight_decay: float = 0.0
    # Dropout during training. The reference turns it off on purpose (determinism; it helps
    # short fine-tunes), so a fine-tune draws no random numbers once its data order is set.
    dropout: bool = False
    warmup_frac: float = 0.0  # of all steps, a linear learning-rate warm-up before the cosine
    grad_clip: float | None = None  # max global gradient norm; None: no clipping
    # LoRA adapters on a frozen backbone (the model is built with them; `fit` trains what
    # requires grad either way); None: full fine-tuning.
    lora: LoraSettings | None = None

    def key(self) -> dict[str, Any]:
        """What job ids hash: every setting, `lora` only when set, so that the ids of full
        fine-tunes planned before LoRA existed stay the same."""
        fields = dict(self.__dict__)
        lora = fields.pop("lora")
        return fields if lora is None else {**fields, "lora": lora.key()}


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
    """Linear warm-up (none by default), then cosine decay to zero over the remaining steps;
    with no warm-up this is the reference's `CosineAnnealingLR(optimizer, total)`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch, a function of (seed, epoch) only: a redone epoch repeats it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))


def _shard(global_idx: torch.Tensor, rank: int, world: int) -> tuple[torch.Tensor, float]:
    """This rank's rows of a global batch, and its loss weight.

    DDP averages gradients over ranks; weighting each rank's mean loss by its share of the
    batch makes that average the whole batch's mean, even when shards differ in size. A
    rank left without rows (a last batch smaller than the world) still has to take part in
    the step: it runs one row with weight zero.
    """
    idx = global_idx[rank::world]
    if len(idx) == 0:
        return global_idx[:1], 0.0
    return idx, len(idx) * world / len(global_idx)


def fit(
    model: nn.Module,
    inputs: Inputs,
    targets: torch.Tensor,
    cfg: TrainConfig,
    checkpointer: Checkpointer | None = None,
    reporter: Reporter | None = None,
    *,
    checkpoint_seconds: float = 120.0,
    shard: tuple[int, int] = (0, 1),
    state_access: StateAccess | None = None,
    on_epoch_end: Callable[[nn.Module, int], None] | None = None,
) -> nn.Module:
    """Train `model` on `targets` ([N, 2] probabilities); resumes from the last checkpoint.

    The full state (weights, optimizer, schedule, step, position in the epoch, RNG) is saved
    at each epoch's end and every `checkpoint_seconds` within one, so a killed job redoes at
    most that much. `shard=(rank, world)` trains on every world-th row of each global batch:
    with DDP averaging gradients, the world's step equals the single-process step.
    `state_access` reads and restores sharded (FSDP) state; whole state by default.
    `on_epoch_end(model, epochs_done)` runs before each epoch's checkpoint, so whatever it
    records (a best-epoch choice) is never behind the checkpoint a resume starts from.
    """
    if cfg.lr <= 0 or cfg.epochs <= 0 or cfg.batch_size <= 0:
        raise UserError(f"train: lr, epochs and batch_size must be positive (got {cfg})")
    if not 0.0 <= cfg.warmup_frac < 1.0 or (cfg.grad_clip is not None and cfg.grad_clip <= 0):
        raise UserError(
            f"train: warmup_frac must be in [0, 1) and grad_clip positive or null (got {cfg})"
        )
    checkpointer = checkpointer or NullCheckpointer()
    reporter = reporter or NullReporter()
    rank, world = shard
    access = state_access or WholeState()
    gather = all_rows if world > 1 else local_rows
    device = next(model.parameters()).device
    loss_fn = build_loss(cfg.loss, cfg.loss_options)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(inputs) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = _schedule(optimizer, total, int(cfg.warmup_frac * total))
    epoch, step, epoch_loss = 0, 0, 0.0
    state = checkpointer.load()
    if state is not None:
        access.load(model, optimizer, state["model"], state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        epoch, step, epoch_loss = state["epoch"], state["step"], state["epoch_loss"]
        set_rng_state(state["rng"])

    def save() -> None:
        if rank != 0 and not access.collective:
            return
        model_state = access.model_state(model)  # a gather every rank joins under FSDP
        optimizer_state = access.optimizer_state(model, optimizer)
        if rank == 0:
            checkpointer.save(
                {
                    "model": model_state,
                    "optimizer": optimizer_state,
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch,
                    "step": step,  # also the position within `epoch`
                    "epoch_loss": epoch_loss,
                    "rng": rng_state(),
                }
            )

    model.train(cfg.dropout)  # eval mode unless dropout is asked for; gradients flow either way
    last_save = time.monotonic()
    while epoch < cfg.epochs:
        order = epoch_order(len(inputs), cfg.seed, epoch)
        for batch_start in range(
            (step - epoch * steps_per_epoch) * cfg.batch_size, len(order), cfg.batch_size
        ):
            global_idx = order[batch_start : batch_start + cfg.batch_size]
            idx, weight = _shard(global_idx, rank, world)
            batch = {k: v.to(device) for k, v in inputs.batch(idx).items()}
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(**batch)
            rows = gather if weight > 0 else no_rows(gather)
            loss = loss_fn(logits.float(), targets[idx].to(device), step / max(1, total), rows)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch}, step {step}: lower the learning "
                    f"rate (now {cfg.lr}) or check the inputs for NaN/inf"
                )
            optimizer.zero_grad(set_to_none=True)
            (loss * weight).backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            epoch_loss += loss.item() * len(idx) * (weight > 0)
            due = time.monotonic() - last_save >= checkpoint_seconds and step < total
            if access.any_rank(due):  # sharded state is saved by all ranks or none
                save()
                last_save = time.monotonic()
        metrics = {"epoch": epoch + 1, "train_loss": epoch_loss / len(inputs)}
        epoch, epoch_loss = epoch + 1, 0.0
        if on_epoch_end is not None:
            on_epoch_end(model, epoch)
            model.train(cfg.dropout)  # scoring an epoch left the model in eval mode
        save()
        last_save = time.monotonic()
        reporter.report(metrics)  # after the save: whatever the reporter does, the epoch is kept
    model.eval()
    return model


@torch.inference_mode()
def predict_probs(
    model: nn.Module,
    inputs: Inputs,
    batch_size: int = 256,
    batches: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Class probabilities [N, 2] in input order; `batches` (row indices) may group rows,
    e.g. by length so that little compute goes to padding."""
    model.eval()
    device = next(model.parameters()).device
    if batches is None:
        batches = [
            torch.arange(start, min(start + batch_size, len(inputs)))
            for start in range(0, len(inputs), batch_size)
        ]
    probs = torch.zeros(len(inputs), 2)
    for idx in batches:
        batch = {k: v.to(device) for k, v in inputs.batch(idx).items()}
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(**batch)
        probs[idx] = torch.softmax(logits.float(), dim=-1).cpu()
    return probs

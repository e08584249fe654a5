"""Language-model fine-tuning: generative fine-tuning (a decoder trained as a language model
on a task's unlabeled text before it learns any labels), and the models of answer tasks.

Burns et al. 2023 used generative fine-tuning for reward modeling (section 5.2.2): it made
the task more salient to the strong model and raised PGR there; the paper did not apply it
to its NLP tasks. The reference code has no language-model fine-tuning, so this recipe is
ours: dropout follows the study's `train.dropout` (off by default, as in the classifier
fine-tunes), the learning rate is constant, and gradients are clipped at norm 1.0 whatever
`train.grad_clip` says — without clipping, the constant-rate fine-tune of
tests/w2s_ray/study/test_generative.py diverged (perplexity 312 → 1275, against → 22 with it).

The loop is plain PyTorch, like `w2s_ray.train.loop`; it checkpoints at each epoch's end
through the same Checkpointer protocol, so a killed job loses at most one epoch.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from w2s_ray.infer.hf import pick_device
from w2s_ray.train.inputs import TokenInputs
from w2s_ray.train.loop import (
    Checkpointer,
    NullCheckpointer,
    epoch_order,
    rng_state,
    set_rng_state,
)


def causal_lm_loss(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    prompt_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Next-token cross-entropy over real tokens only (padding is never a target); with
    `prompt_lengths`, over each row's answer only (its first tokens are the prompt)."""
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    if prompt_lengths is not None:
        positions = torch.arange(labels.shape[1], device=labels.device)
        labels = labels.masked_fill(positions[None, :] < prompt_lengths[:, None], -100)
    return model(**batch, labels=labels).loss


def lm_finetune(
    model_path: str,
    token_ids: list[list[int]],
    out_dir: Path,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    checkpointer: Checkpointer | None = None,
    trust_remote_code: bool = False,
    prompt_lengths: list[int] | None = None,
    dropout: bool = False,
    grad_clip: float | None = 1.0,
) -> dict[str, float]:
    """Train the causal LM at `model_path` on `token_ids`; save it (safetensors) and its
    tokenizer to `out_dir`. Returns the first and last epochs' mean loss. With
    `prompt_lengths`, each row is prompt + answer and only the answer is learned.
    `dropout` trains in train mode (else eval mode, gradients on); `grad_clip` caps the
    gradient norm (None: no clipping)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not token_ids:
        raise ValueError("generative fine-tuning needs at least one text")
    device = pick_device()
    model = AutoModelForCausalLM.from_pretrained(
        model_path, use_safetensors=True, trust_remote_code=trust_remote_code
    ).to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    inputs = TokenInputs(token_ids, pad_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    checkpointer = checkpointer or NullCheckpointer()
    losses: list[float] = []
    start = 0
    torch.manual_seed(seed)
    state = checkpointer.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, losses = state["epoch"], state["losses"]
        set_rng_state(state["rng"])  # dropout (when on) goes on as if never stopped
    model.train(dropout)
    for epoch in range(start, epochs):
        order = epoch_order(len(inputs), seed, epoch)
        total, count = 0.0, 0
        for first in range(0, len(order), batch_size):
            idx = order[first : first + batch_size]
            batch = {k: v.to(device) for k, v in inputs.batch(idx).items()}
            prompts = None
            if prompt_lengths is not None:
                prompts = torch.tensor([prompt_lengths[i] for i in idx.tolist()], device=device)
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                loss = causal_lm_loss(model, batch, prompts)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"language-model loss became {loss.item()} at epoch {epoch}: lower the "
                    f"learning rate (now {lr})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
        losses.append(total / count)
        checkpointer.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch + 1,
                "losses": losses,
                "rng": rng_state(),
            }
        )
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {"lm_loss_first": losses[0], "lm_loss_last": losses[-1]}


def perplexity(model_path: str, token_ids: list[list[int]]) -> float:
    """exp(mean next-token loss) over `token_ids`, one text at a time (for tests/reports)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, use_safetensors=True).eval()
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for ids in token_ids:
            if len(ids) < 2:
                continue
            batch = {
                "input_ids": torch.tensor([ids]),
                "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
            }
            total += causal_lm_loss(model, batch).item() * (len(ids) - 1)
            tokens += len(ids) - 1
    return math.exp(total / max(1, tokens))

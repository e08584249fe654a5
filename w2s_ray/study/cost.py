"""What a job costs: its wall seconds on one device and its GPU memory. The scheduler orders
its queue by the seconds, `plan` simulates the study with them, `status` scales them by what
finished jobs took, and the memory sizes the GPU share a job asks for.

Calibrated on docs/benchmarks.md rather than FLOPs at a nominal rate (P: the card's
parameters, L: layers, H: hidden size, T: tokens in a batch):
- GPU step (H100, bf16 autocast): 4.4 ms × L for kernel launches + 6·P·T at 590 TFLOP/s.
  Below ~0.5B parameters the launches dominate, so a step costs about the same at batch 32
  and 128. Least squares on the ten fine-tuning rows (5 models × batch 32/128 × 128 tokens),
  errors −17% to +19% (tests/w2s_ray/study/test_cost.py checks them).
- GPU forward (batches of 64 or 32): 1.4 ms × L (features, 3,664 texts/s), 2.5 ms × L
  (a classifier's labels, 2,120 texts/s), 1.2 ms × L (prompt scoring, 789–991 prompts/s).
- CPU (2 cores, fp32, compute-bound): 6·P·T at 0.15 TFLOP/s to train (minilm-l6 1,175 and
  smollm2-135m 183 tokens/s: −6%, +2%); 2·P·T at 0.24 TFLOP/s for features and labels (210 and
  193 texts/s of 26 tokens) and 0.15 TFLOP/s for prompts (17.7 and 5.6 prompts/s).
- GPU memory of a fine-tune: 16 bytes per parameter (fp32 weights and gradients, two Adam
  moments) + 55 bytes × L × H per token for activations, fitted to the peaks at batch
  128 × 128 tokens: 2.3 / 9.4 / 16.5 / 25.4 / 62.3 GiB against the measured 2.1 / 10.1 /
  17.1 / 33.0 / 53.7 for minilm-l6, mpnet-base, smollm2-135m, qwen2.5-0.5b, pythia-1.4b
  (+8%, −7%, −3%, −23%, +16%). A forward holds bf16 weights (fp32 for a fine-tuned
  classifier), a few layers' activations and, for a decoder, its key-value cache.
- GPU memory of a LoRA fine-tune (not fitted: no GPU measurement yet, bench/lora_memory.py
  takes one): frozen weights at 4 bytes (fp32 at most; a bf16 checkpoint loads at 2) with
  no gradients or Adam moments, 16 bytes per adapter parameter (rank × LORA_WIDTHS × L × H,
  the in+out widths of a block's projections), and the same activations as a full
  fine-tune (backward still runs through every layer). A LoRA step is priced at 4·P·T
  FLOPs: no weight gradients for the frozen layers.

Assumptions, not measured: a random training batch is padded to its longest text, about
TRAIN_FILL of max_length; length-sorted inference batches to about INFER_FILL; a job's
start-up is STARTUP_SECONDS plus reading its weights at LOAD_BYTES_PER_S; a shared GPU runs
each job at its own pace (launch-bound steps leave it mostly idle: 33 ms of GPU work in a
156 ms smollm2-135m step); Ray Train workers divide a fine-tune's steps evenly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from w2s_ray.models import ModelCard
from w2s_ray.study.graph import Job
from w2s_ray.study.resolve import Study
from w2s_ray.study.work import Forward, Sizes, Train, Work


@dataclass(frozen=True)
class Rate:
    """One pass over a batch: kernel launches per layer, then FLOPs at a sustained rate."""

    layer_seconds: float
    flops_per_s: float


# (device, pass) -> Rate; every number is fitted in the module docstring
RATES: dict[tuple[str, str], Rate] = {
    ("gpu", "train"): Rate(4.4e-3, 590e12),
    ("gpu", "features"): Rate(1.4e-3, 590e12),
    ("gpu", "label"): Rate(2.5e-3, 590e12),
    ("gpu", "prompt"): Rate(1.2e-3, 590e12),
    ("cpu", "train"): Rate(0.0, 0.15e12),
    ("cpu", "features"): Rate(0.0, 0.24e12),
    ("cpu", "label"): Rate(0.0, 0.24e12),
    ("cpu", "prompt"): Rate(0.0, 0.15e12),
}
TRAIN_BYTES_PER_PARAM = 16  # fp32 weights + gradients + two Adam moments
FROZEN_BYTES_PER_PARAM = 4  # a LoRA fine-tune's frozen weights, fp32 at most
LORA_WIDTHS = 24  # in+out widths (in hidden sizes) of a block's adapted layers: q,k,v,o + MLP
ACTIVATION_BYTES = 55.0  # per layer × hidden × token of a training batch (fitted)
# Activation checkpointing keeps each block's input (fp32 at most) and, in the backward
# pass, one block's activations at a time (an assumption, not fitted)
CHECKPOINT_BYTES = 4.0  # per layer × hidden × token
INFER_LAYERS_LIVE = 2  # a forward keeps about two layers' activations at once
HEAD_SECONDS = 0.5  # a probe head or a label lookup on cached features (measured on CPU)
STARTUP_SECONDS = 2.0  # a task's process, imports and tokenizer (the bench's 0.4-1.3 s + 1)
LOAD_BYTES_PER_S = 1e9  # reading weights from the local cache
TRAIN_FILL = 0.8  # a random batch's longest text, as a share of max_length
INFER_FILL = 0.5  # length-sorted batches: about the mean text
INFER_BATCH = 64  # w2s_ray.infer.hf's batches: features, labels, answers
PROMPT_BATCH = 32  # and prompts
ANSWER_TOKENS = 8  # w2s_ray.study.answers.MAX_ANSWER_TOKENS, one forward each
UNCAPPED_TRAIN = 20_000  # assumed pool size when a study sets no n_train cap
UNCAPPED_TEST = 5_000


def study_sizes(study: Study) -> Sizes:
    """Example counts a job sees, at most: the spec's caps."""
    data = study.spec.data
    pool = data.n_train or UNCAPPED_TRAIN
    return Sizes(pool // 2, pool - pool // 2, data.n_test or UNCAPPED_TEST)


def model_shape(card: ModelCard) -> tuple[int, int]:
    """(layers, hidden) from the card, else from its size: P ≈ 12·L·H² with H ≈ 64·L."""
    if card.layers and card.hidden:
        return card.layers, card.hidden
    if card.hidden:
        return max(1, round(card.params / (12 * card.hidden**2))), card.hidden
    if card.layers:
        return card.layers, max(1, round((card.params / (12 * card.layers)) ** 0.5))
    layers = max(1, round((card.params / (12 * 64**2)) ** (1 / 3)))
    return layers, 64 * layers


# ---- memory ------------------------------------------------------------------------------
def lora_params(card: ModelCard, rank: int) -> int:
    """Adapter parameters of a LoRA fine-tune of `card` at `rank` (estimate)."""
    layers, hidden = model_shape(card)
    return rank * LORA_WIDTHS * layers * hidden


def training_bytes(
    card: ModelCard,
    batch: int,
    tokens: int,
    lora_rank: int | None = None,
    checkpointed: bool = False,
) -> float:
    """Peak GPU memory of a fine-tune step on `batch` texts of `tokens` tokens; with LoRA
    only the adapters carry gradients and optimizer state; with activation checkpointing
    only the blocks' inputs and one block's activations are held."""
    layers, hidden = model_shape(card)
    if lora_rank is None:
        weights = TRAIN_BYTES_PER_PARAM * card.params
    else:
        adapters = lora_params(card, lora_rank)
        weights = FROZEN_BYTES_PER_PARAM * card.params + TRAIN_BYTES_PER_PARAM * adapters
    per_layer = CHECKPOINT_BYTES if checkpointed else ACTIVATION_BYTES
    held = per_layer * layers + (ACTIVATION_BYTES if checkpointed else 0.0)
    return weights + held * hidden * batch * tokens


def forward_bytes(card: ModelCard, batch: int, tokens: int, weight_bytes: int) -> float:
    """Peak GPU memory of a forward: weights, a few layers' activations, a decoder's cache."""
    layers, hidden = model_shape(card)
    per_token = ACTIVATION_BYTES * hidden * INFER_LAYERS_LIVE
    if card.arch == "decoder":
        per_token += 4 * layers * hidden  # bf16 keys and values of every layer
    return weight_bytes * card.params + per_token * batch * tokens


def work_of(job: Job, study: Study) -> Work:
    """What `job` does to its model, as its stage module describes it."""
    from w2s_ray.study.stages import stage_of

    return stage_of(job).work(job, study, study_sizes(study))


def _pass_bytes(card: ModelCard, step: Train | Forward, length: int) -> float:
    if isinstance(step, Train):
        return training_bytes(card, step.batch, length, step.lora_rank, step.checkpointed)
    batch = PROMPT_BATCH if step.kind == "prompt" else INFER_BATCH
    weight_bytes = 4 if step.kind == "label" else 2  # a fine-tuned classifier stays fp32
    return forward_bytes(card, batch, step.tokens or length, weight_bytes)


def gpu_memory_bytes(job: Job, study: Study) -> float:
    """Estimated peak GPU memory of `job`, every text at its max_length (the worst batch)."""
    card = study.cards[job.model]
    length = study.max_length(job.dataset)
    peaks = [_pass_bytes(card, step, length) for step in work_of(job, study).passes]
    return max(peaks, default=forward_bytes(card, INFER_BATCH, length, 2))


# ---- seconds -----------------------------------------------------------------------------
def _batches_seconds(
    card: ModelCard, rate: Rate, batches: float, batch: int, tokens: float, flops_per_token: float
) -> float:
    layers, _ = model_shape(card)
    flops = flops_per_token * card.params * batch * tokens
    return batches * (rate.layer_seconds * layers + flops / rate.flops_per_s)


def train_step_seconds(
    card: ModelCard, device: str, batch: int, tokens: float, flops_per_token: float = 6.0
) -> float:
    """One fine-tuning step on `batch` texts padded to `tokens` ("gpu" or "cpu"), at
    `flops_per_token` × params (Train.flops_per_param_token: 6 for a full fine-tune)."""
    return _batches_seconds(card, RATES[device, "train"], 1, batch, tokens, flops_per_token)


def _train_seconds(card: ModelCard, device: str, step: Train, length: int) -> float:
    steps = math.ceil(step.examples / step.batch) * step.epochs
    flops = step.flops_per_param_token
    return steps * train_step_seconds(card, device, step.batch, TRAIN_FILL * length, flops)


def _forward_seconds(card: ModelCard, device: str, kind: str, n: int, length: int) -> float:
    batch = PROMPT_BATCH if kind == "prompt" else INFER_BATCH
    tokens = length if kind == "prompt" else INFER_FILL * length
    return _batches_seconds(card, RATES[device, kind], math.ceil(n / batch), batch, tokens, 2)


def _answer_seconds(card: ModelCard, device: str, n: int, length: int) -> float:
    """Greedy answers: a forward of each prompt batch, then one per answer token."""
    prompts = _forward_seconds(card, device, "features", n, length)
    return prompts + ANSWER_TOKENS * _forward_seconds(card, device, "features", n, 1)


def startup_seconds(card: ModelCard) -> float:
    return STARTUP_SECONDS + 2 * card.params / LOAD_BYTES_PER_S


def _pass_seconds(
    card: ModelCard, device: str, step: Train | Forward, length: int, workers: int
) -> float:
    if isinstance(step, Train):
        seconds = _train_seconds(card, device, step, length)
        return seconds if step.language_model else seconds / workers
    if step.kind == "answer":
        return _answer_seconds(card, device, step.examples, length)
    return _forward_seconds(card, device, step.kind, step.examples, step.tokens or length)


def job_seconds(job: Job, study: Study, gpus: bool, workers: int = 1) -> float:
    """Estimated wall seconds of `job` alone on its device (a GPU when `gpus`, else CPUs);
    a fine-tune over `workers` Ray Train workers splits its steps among them."""
    card = study.cards[job.model]
    device = "gpu" if gpus and card.resources.gpus > 0 else "cpu"  # as job_resources asks
    work = work_of(job, study)
    if not work.passes:
        return HEAD_SECONDS * max(1, work.heads)
    length = study.max_length(job.dataset)
    seconds = sum(_pass_seconds(card, device, step, length, workers) for step in work.passes)
    return startup_seconds(card) + seconds

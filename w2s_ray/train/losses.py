"""Loss registry for training on (soft) labels: xent, logconf (the paper's), product, gce,
and EleutherAI w2s's kl, entropy and window.

Every loss takes logits [B, 2], target probabilities [B, 2] and the training progress in
[0, 1] (fraction of steps done), which schedules the auxiliary weights. `gather` brings in
the other data-parallel ranks' rows for losses that use whole-batch statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from w2s_ray.errors import UserError
from w2s_ray.registry import Registry
from w2s_ray.train.collective import Gather, local_rows


class Loss(Protocol):
    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        progress: float,
        gather: Gather = local_rows,
    ) -> torch.Tensor: ...


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def warmup_weight(progress: float, max_weight: float, warmup_frac: float) -> float:
    """Linear ramp from 0 to `max_weight` over the first `warmup_frac` of training, then flat,
    as the paper describes. The reference code ramps to only `warmup_frac · max_weight` and
    then jumps to `max_weight` (openai/weak-to-strong issue #33)."""
    if warmup_frac <= 0:
        return max_weight
    return max_weight * min(1.0, max(0.0, progress) / warmup_frac)


def harden_to_balance(
    student_probs: torch.Tensor, weak_targets: torch.Tensor, gather: Gather = local_rows
) -> torch.Tensor:
    """One-hot student predictions thresholded so their class balance matches the weak labels'.

    The threshold is the quantile of the student's P(class 1) that leaves as large a share of
    positives in the batch as the mean of the weak labels' soft P(class 1) — the reference
    code's and EleutherAI's prior, not the share of weak labels above 0.5 — so hardening
    cannot collapse onto one class. Both are taken over the whole batch, all ranks' rows.
    """
    p1 = student_probs[:, 1]
    stats = gather(torch.stack([p1, weak_targets[:, 1].to(p1.dtype)], dim=1))
    weak_positive_frac = stats[:, 1].mean()
    threshold = torch.quantile(stats[:, 0], (1.0 - weak_positive_frac).clamp(0.0, 1.0))
    hard = (p1 > threshold) if weak_positive_frac < 1 else torch.ones_like(p1, dtype=torch.bool)
    return F.one_hot(hard.long(), num_classes=2).to(student_probs.dtype)


@dataclass(frozen=True)
class XentLoss:
    """Cross-entropy on the supervisor's soft labels (the paper's naive baseline)."""

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        progress: float,
        gather: Gather = local_rows,
    ) -> torch.Tensor:
        return soft_cross_entropy(logits, targets)


@dataclass(frozen=True)
class LogConfLoss:
    """Auxiliary confidence loss: CE(f(x), (1-α)·weak + α·hardened(f(x))), α warmed up.

    The paper (Burns et al. 2023, appendix) warms α up linearly over the first 20% of
    training to α_max: 0.75 for its largest students, 0.5 for the others; a study sets the
    larger value per student with `options_by_model`. The reference code uses α_max 0.5 for
    every student and `warmup_frac` 0.1 (with its jump, see `warmup_weight`).
    """

    aux_max: float = 0.5
    warmup_frac: float = 0.2

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        progress: float,
        gather: Gather = local_rows,
    ) -> torch.Tensor:
        alpha = warmup_weight(progress, self.aux_max, self.warmup_frac)
        hardened = harden_to_balance(torch.softmax(logits.detach().float(), -1), targets, gather)
        return soft_cross_entropy(logits, (1 - alpha) * targets + alpha * hardened)


@dataclass(frozen=True)
class ProductLoss:
    """Product of experts: targets ∝ weak^α · student^β, β warmed up like logconf's α.

    The reference code's product loss keeps β at its maximum from the first step (its
    `warmup_frac` is unused); `warmup_frac: 0` gives that.
    """

    alpha: float = 1.0
    beta_max: float = 1.0
    warmup_frac: float = 0.2

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        progress: float,
        gather: Gather = local_rows,
    ) -> torch.Tensor:
        beta = warmup_weight(progress, self.beta_max, self.warmup_frac)
        student = torch.softmax(logits.detach().float(), -1)
        product = targets.clamp_min(1e-8).pow(self.alpha) * student.clamp_min(1e-8).pow(beta)
        return soft_cross_entropy(logits, product / product.sum(-1, keepdim=True))


@dataclass(frozen=True)
class GceLoss:
    """Generalized cross-entropy (Zhang & Sabuncu 2018): Σ_c t_c·(1 − p_c^q)/q.

    Weak labels are noisy labels; GCE sits between cross-entropy (q → 0) and mean absolute
    error (q = 1), so an example the student confidently contradicts pulls on it less than
    under cross-entropy (its gradient carries a factor p_y^q). The authors use q = 0.7.
    """

    q: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 < self.q <= 1.0:
            raise UserError(f"loss 'gce': q must be in (0, 1], got {self.q} (0.7 is typical)")

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        progress: float,
        gather: Gather = local_rows,
    ) -> torch.Tensor:
        # 1 − p^q = −expm1(q·log p): exact for small q, where 1 − p^q would lose all digits
        shortfall = -torch.expm1(self.q * F.log_softmax(logits.float(), dim=-1))
        return (targets * shortfall / self.q).sum(-1).mean()


@dataclass(frozen=True)
class KlLoss:
    """KL(weak ‖ student) = Σ_k t_k·(log t_k − log p_k), batch mean, 0·log 0 = 0 (EleutherAI).

    The labels' entropy Σ t·log t is a constant, so the gradient is xent's and it trains
    exactly like xent; only the reported loss differs (0 when the student matches the labels).
    """

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        progress: float,
        gather: Gather = local_rows,
    ) -> torch.Tensor:
        targets = targets.float()
        neg_entropy = torch.xlogy(targets, targets).sum(-1).mean()
        return neg_entropy + soft_cross_entropy(logits, targets)


def balance_labels(targets: torch.Tensor, gather: Gather = local_rows) -> torch.Tensor:
    """Soft labels with their log-odds centred on the whole batch: sigmoid(logit(t) − mean).

    EleutherAI's `balance_batch`: a batch whose labels lean to one class is pulled back to
    even odds; t is clamped to [1e-7, 1 − 1e-7] so the log-odds stay finite (in float64:
    float32 would round 1 − 1e-7 and shift the clamped log-odds by 0.2).
    """
    log_odds = torch.logit(targets[:, 1].double().clamp(1e-7, 1 - 1e-7))
    p1 = torch.sigmoid(log_odds - gather(log_odds[:, None])[:, 0].mean()).float()
    return torch.stack([1 - p1, p1], dim=1)


@dataclass(frozen=True)
class EntropyLoss:
    """CE(f(x), (1−α)·t + α·softmax(f(x)).detach()), α warmed up like logconf (EleutherAI).

    logconf's target with the student's soft prediction in place of its hardened one. That
    target is detached and equals the student's softmax, so its gradient is zero: this
    trains like xent with the gradient scaled by (1 − α). EleutherAI warms α up over a
    number of steps (100–200); here over a fraction of training, as logconf does.
    `balance_batch: 1` first centres the labels' log-odds on the batch (`balance_labels`).
    """

    aux_max: float = 0.5
    warmup_frac: float = 0.2
    balance_batch: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.aux_max <= 1.0:
            raise UserError(f"loss 'entropy': aux_max must be in [0, 1], got {self.aux_max}")
        if not 0.0 <= self.warmup_frac <= 1.0:
            raise UserError(
                f"loss 'entropy': warmup_frac must be in [0, 1], got {self.warmup_frac}"
            )
        if self.balance_batch not in (0.0, 1.0):
            raise UserError(
                f"loss 'entropy': balance_batch must be 0 (off) or 1 (on), got {self.balance_batch}"
            )

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        progress: float,
        gather: Gather = local_rows,
    ) -> torch.Tensor:
        alpha = warmup_weight(progress, self.aux_max, self.warmup_frac)
        if self.balance_batch:
            targets = balance_labels(targets, gather)
        own = torch.softmax(logits.detach().float(), -1)
        return soft_cross_entropy(logits, (1 - alpha) * targets.float() + alpha * own)


@dataclass(frozen=True)
class WindowLoss:
    """Cross-entropy only where the student is unsure: max class probability < 0.5 + radius.

    EleutherAI's window loss. It is summed over those examples and divided by the whole
    batch size, so confident examples add zero. EleutherAI's data-dependent radius
    ("midweak") is left out: radius is a number here.
    """

    radius: float = 0.15

    def __post_init__(self) -> None:
        if not 0.0 < self.radius <= 0.5:
            raise UserError(f"loss 'window': radius must be in (0, 0.5], got {self.radius}")

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        progress: float,
        gather: Gather = local_rows,
    ) -> torch.Tensor:
        log_probs = F.log_softmax(logits.float(), dim=-1)
        unsure = log_probs.detach().exp().max(-1).values < 0.5 + self.radius
        per_row = -(targets * log_probs).sum(-1)
        # a per-rank mean of zeros and CEs; the loop's rank weights make it the whole batch's
        return (per_row * unsure).sum() / logits.shape[0]


@dataclass(frozen=True)
class LossEntry:
    cls: type
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


LOSSES: Registry[LossEntry] = Registry("loss", "w2s-ray list losses")
LOSSES.register("xent", LossEntry(XentLoss, "cross-entropy on soft labels"))
LOSSES.register(
    "logconf",
    LossEntry(
        LogConfLoss,
        "auxiliary confidence loss (Burns et al. 2023), linear warm-up",
        {"aux_max": 0.5, "warmup_frac": 0.2},
    ),
)
LOSSES.register(
    "product",
    LossEntry(
        ProductLoss,
        "product of weak labels and student predictions",
        {"alpha": 1.0, "beta_max": 1.0, "warmup_frac": 0.2},
    ),
)

LOSSES.register(
    "gce",
    LossEntry(
        GceLoss,
        "generalized cross-entropy, robust to noisy labels (q: 0 → xent, 1 → MAE)",
        {"q": 0.7},
    ),
)
LOSSES.register(
    "kl",
    LossEntry(KlLoss, "KL(weak ‖ student) (EleutherAI): xent's gradient, loss 0 at a match"),
)
LOSSES.register(
    "entropy",
    LossEntry(
        EntropyLoss,
        "CE on (1−α)·weak + α·student's own soft prediction (EleutherAI): xent scaled by 1−α",
        {"aux_max": 0.5, "warmup_frac": 0.2, "balance_batch": 0.0},
    ),
)
LOSSES.register(
    "window",
    LossEntry(
        WindowLoss,
        "cross-entropy only where the student's max probability < 0.5 + radius (EleutherAI)",
        {"radius": 0.15},
    ),
)


def build_loss(name: str, options: dict[str, Any] | None = None) -> Loss:
    entry = LOSSES.get(name)
    options = dict(options or {})
    unknown = sorted(set(options) - set(entry.defaults))
    if unknown:
        allowed = ", ".join(entry.defaults) or "none"
        raise UserError(f"loss '{name}' has no option(s) {unknown}; its options: {allowed}")
    return entry.cls(**{**entry.defaults, **options})

"""Probes on a strong model's frozen features that second-guess weak labels (EleutherAI's w2s
relabels or filters weak labels with them). Each example's prediction comes from a probe
that never saw that example's label, so a probe cannot simply hand a label back.
"""

from __future__ import annotations

import torch


def knn_leave_one_out(
    features: torch.Tensor, p1: torch.Tensor, k: int, groups: list[str], block: int = 1024
) -> torch.Tensor:
    """Each example's mean weak P(label 1) over its `k` nearest examples of other groups
    (Euclidean, as EleutherAI's kNN probe measures; theirs keeps the example among its own
    neighbours). Related examples share a group, so none votes for another; rows go in
    blocks so a big pool never holds an N×N matrix."""
    x = features.float()
    index = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    group_ids = torch.tensor([index[g] for g in groups])
    out = torch.empty(len(x), dtype=torch.float32)
    for start in range(0, len(x), block):
        rows = slice(start, start + block)
        distances = torch.cdist(x[rows], x)
        distances[group_ids[rows, None] == group_ids[None, :]] = float("inf")
        k_here = min(k, int(torch.isfinite(distances).sum(1).min()))
        if k_here < 1:
            raise ValueError("a kNN probe needs examples of at least two groups")
        nearest = distances.topk(k_here, largest=False).indices
        out[rows] = p1.float()[nearest].mean(dim=1)
    return out


def _standardized(train: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / std, (other - mean) / std


def fit_logistic(x: torch.Tensor, p1: torch.Tensor, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of a logistic regression on soft targets (mean cross-entropy plus
    `l2`·|w|², full-batch L-BFGS): deterministic, no learning rate to tune."""
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    x64, y64 = x.double(), p1.double()
    optimizer = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = x64 @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y64)
        loss = loss + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach(), b.detach()


def logistic_cross_fitted(
    features: torch.Tensor, p1: torch.Tensor, fold_of: list[int], l2: float
) -> torch.Tensor:
    """P(label 1) for each example from a logistic regression fitted on the other folds'
    examples and weak labels (features standardized on those folds)."""
    folds = sorted(set(fold_of))
    if len(folds) < 2:
        raise ValueError("cross-fitting needs at least two folds")
    fold = torch.tensor(fold_of)
    out = torch.empty(len(p1), dtype=torch.float32)
    for f in folds:
        held = fold == f
        train_x, held_x = _standardized(features[~held].double(), features[held].double())
        w, b = fit_logistic(train_x, p1[~held], l2)
        out[held] = torch.sigmoid(held_x @ w + b).float()
    return out

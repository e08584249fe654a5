"""Evaluation metrics on held-out ground truth: accuracy, AUROC, agreement with a supervisor."""

from __future__ import annotations

import torch


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    return float((probs.argmax(-1) == labels).float().mean())


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Mann–Whitney AUROC of P(class 1) from tied-average ranks; NaN when a class is absent."""
    n_pos = int((labels == 1).sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = torch.unique(scores.double(), return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = (ends - (counts.double() - 1) / 2)[inverse]  # 1-based, ties share their mean rank
    u_stat = ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u_stat / (n_pos * n_neg))


def agreement(probs: torch.Tensor, supervisor_probs: torch.Tensor) -> float:
    """How often the student's hard prediction equals its weak supervisor's."""
    return float((probs.argmax(-1) == supervisor_probs.argmax(-1)).float().mean())

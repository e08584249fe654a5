"""What a student did with its labels, per run: how often it departs from the labels it
learned (misfit: the theory papers' gain–misfit relation reads it) and whether its test
errors are its weak supervisor's errors. Pure torch."""

from __future__ import annotations

import torch


def _share(mask: torch.Tensor, where: torch.Tensor) -> float | None:
    """The share of `where`'s rows where `mask` holds; None when `where` selects none."""
    return float(mask[where].float().mean()) if bool(where.any()) else None


def student_diagnostics(
    pool_p1: torch.Tensor,
    label_p1: torch.Tensor,
    test_p1: torch.Tensor,
    weak_test_p1: torch.Tensor,
    test_labels: torch.Tensor,
) -> dict[str, float | None]:
    """`pool_p1`/`label_p1`: the student's and its training labels' P(label 1) on the examples
    it learned from; `test_p1`/`weak_test_p1`: the student's and its weak supervisor's on the
    test set, whose true labels are `test_labels`."""
    disagree = (pool_p1 > 0.5) != (label_p1 > 0.5)
    truth = test_labels.bool()
    weak_wrong = (weak_test_p1 > 0.5) != truth
    student_wrong = (test_p1 > 0.5) != truth
    return {
        "misfit": float(disagree.float().mean()) if len(disagree) else None,
        "misfit_sq": float(((pool_p1 - label_p1) ** 2).mean()) if len(disagree) else None,
        "error_overlap": _share(student_wrong, weak_wrong),
        "new_error_rate": _share(student_wrong, ~weak_wrong),
    }

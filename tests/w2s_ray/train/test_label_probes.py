"""Probes that second-guess weak labels: no example's own label reaches its prediction."""

from __future__ import annotations

import torch

from w2s_ray.train.label_probes import knn_leave_one_out, logistic_cross_fitted


def _clusters(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two well-separated clusters; label 1 for the second."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = torch.randn(n, 5, generator=g) + 4.0 * labels[:, None].float()
    return x, labels.float()


def test_knn_votes_with_neighbours_not_itself() -> None:
    x, labels = _clusters()
    flipped = labels.clone()
    flipped[0] = 1 - flipped[0]  # a wrong weak label inside a clean cluster
    groups = [str(i) for i in range(len(x))]
    predicted = knn_leave_one_out(x, flipped, k=5, groups=groups)
    assert predicted[0] == labels[0]  # its neighbours outvote the wrong label
    assert ((predicted > 0.5).float() == labels).all()


def test_knn_ignores_examples_of_the_same_group() -> None:
    x, labels = _clusters()
    x[1] = x[0]  # a twin of example 0 with the opposite label
    labels[1] = 1 - labels[0]
    same_group = ["a", "a", *[str(i) for i in range(2, len(x))]]
    apart = [str(i) for i in range(len(x))]
    with_twin = knn_leave_one_out(x, labels, k=1, groups=apart)
    without_twin = knn_leave_one_out(x, labels, k=1, groups=same_group)
    assert with_twin[0] == labels[1]  # the twin is the nearest neighbour...
    assert without_twin[0] == labels[0]  # ...unless it is related, then it has no vote


def test_knn_in_blocks_equals_all_at_once() -> None:
    x, labels = _clusters(n=50)
    groups = [str(i // 2) for i in range(50)]
    whole = knn_leave_one_out(x, labels, k=7, groups=groups, block=1024)
    blocked = knn_leave_one_out(x, labels, k=7, groups=groups, block=8)
    assert torch.equal(whole, blocked)


def test_logistic_probe_is_cross_fitted() -> None:
    x, labels = _clusters(n=80)
    folds = [i % 4 for i in range(80)]
    base = logistic_cross_fitted(x, labels, folds, l2=1e-3)
    assert ((base > 0.5).float() == labels).float().mean() == 1.0
    changed = labels.clone()
    changed[0] = 1 - changed[0]  # example 0's own label never reaches its prediction...
    again = logistic_cross_fitted(x, changed, folds, l2=1e-3)
    assert torch.allclose(again[0], base[0])
    same_fold = torch.tensor(folds) == folds[0]
    assert not torch.allclose(again[~same_fold], base[~same_fold])  # ...but others see it

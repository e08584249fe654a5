"""Weak labels processed before a student learns them, and the per-student diagnostics."""

from __future__ import annotations

import pytest
import torch

from w2s_ray.spec import WeakLabelSpec
from w2s_ray.study.diagnostics import student_diagnostics
from w2s_ray.study.label_processing import ensemble_mean, process


def test_ensemble_is_the_members_mean() -> None:
    a, b, c = torch.tensor([0.2, 0.9]), torch.tensor([0.4, 0.5]), torch.tensor([0.0, 1.0])
    assert torch.allclose(ensemble_mean([a, b, c]), torch.tensor([0.2, 0.8]))


def test_least_confident_labels_are_left_out() -> None:
    p1 = torch.tensor([0.5, 0.9, 0.45, 0.1, 0.7, 0.55, 0.99, 0.3, 0.6, 0.05])
    spec = WeakLabelSpec(drop_least_confident=0.3)
    out = process(spec, p1, None, [str(i) for i in range(10)], [0] * 10)
    assert torch.equal(out.p1, p1)  # labels unchanged, only fewer
    dropped = (~out.keep).nonzero().flatten().tolist()
    assert dropped == [0, 2, 5]  # the three nearest 0.5


def test_probe_filter_drops_what_the_probe_contradicts_most() -> None:
    g = torch.Generator().manual_seed(1)
    truth = (torch.arange(40) % 2).float()
    features = torch.randn(40, 4, generator=g) + 5.0 * truth[:, None]
    weak = truth.clone()
    wrong = [3, 10, 21, 36]
    weak[wrong] = 1 - weak[wrong]
    spec = WeakLabelSpec(probe="knn", probe_use="filter", k=5, filter_fraction=0.1)
    out = process(spec, weak, features, [str(i) for i in range(40)], [i % 4 for i in range(40)])
    assert sorted((~out.keep).nonzero().flatten().tolist()) == wrong
    relabeled = process(
        WeakLabelSpec(probe="knn", k=5), weak, features, [str(i) for i in range(40)], [0] * 40
    )
    assert relabeled.keep.all()
    assert ((relabeled.p1 > 0.5).float() == truth).all()  # the probe repaired the labels


def test_filter_then_confidence_counts_from_what_is_left() -> None:
    p1 = torch.linspace(0.0, 1.0, 20)
    features = torch.arange(20, dtype=torch.float32)[:, None]
    spec = WeakLabelSpec(
        probe="knn", probe_use="filter", k=2, filter_fraction=0.1, drop_least_confident=0.5
    )
    out = process(spec, p1, features, [str(i) for i in range(20)], [0] * 20)
    assert int(out.keep.sum()) == 18 - 9


def test_diagnostics_by_hand() -> None:
    student_pool = torch.tensor([0.9, 0.2, 0.6, 0.4])
    labels_pool = torch.tensor([0.8, 0.7, 0.4, 0.3])  # disagreement on examples 1 and 2
    truth = torch.tensor([1, 1, 0, 0, 1])
    weak_test = torch.tensor([0.9, 0.2, 0.7, 0.1, 0.3])  # wrong on 1, 2, 4
    student_test = torch.tensor([0.8, 0.6, 0.8, 0.6, 0.2])  # wrong on 2, 3, 4
    d = student_diagnostics(student_pool, labels_pool, student_test, weak_test, truth)
    assert d["misfit"] == pytest.approx(0.5)
    assert d["misfit_sq"] == pytest.approx((0.01 + 0.25 + 0.04 + 0.01) / 4)
    assert d["error_overlap"] == pytest.approx(2 / 3)  # of weak's 3 errors, 2 repeated
    assert d["new_error_rate"] == pytest.approx(1 / 2)  # of weak's 2 right, 1 made wrong


def test_diagnostics_without_weak_errors_are_undefined_not_zero() -> None:
    truth = torch.tensor([1, 0])
    d = student_diagnostics(
        torch.tensor([0.9]),
        torch.tensor([0.9]),
        torch.tensor([0.9, 0.1]),
        torch.tensor([0.8, 0.2]),
        truth,
    )
    assert d["error_overlap"] is None
    assert d["new_error_rate"] == 0.0

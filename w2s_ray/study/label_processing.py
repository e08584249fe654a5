"""Weak labels processed before a student learns them (a method's `weak_labels`): averaged
over an ensemble, relabeled or filtered by a probe on the strong model's features, and the
least confident left out. Pure torch over one pool; the relabel stage feeds it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from w2s_ray.spec import WeakLabelSpec
from w2s_ray.train.label_probes import knn_leave_one_out, logistic_cross_fitted


@dataclass(frozen=True)
class Processed:
    """P(label 1) for every pool example and which of them the student keeps."""

    p1: torch.Tensor
    keep: torch.Tensor  # bool, one per pool example


def ensemble_mean(members: list[torch.Tensor]) -> torch.Tensor:
    """The members' mean P(label 1): one soft label from several weak supervisors."""
    return torch.stack([m.float() for m in members]).mean(0)


def _drop_most(score: torch.Tensor, keep: torch.Tensor, fraction: float) -> torch.Tensor:
    """`keep` without the `fraction` of its kept examples with the highest `score` (ties: the
    earlier example goes first, so the choice is reproducible)."""
    kept = keep.nonzero().flatten()
    n_drop = int(fraction * len(kept))
    if n_drop == 0:
        return keep
    order = torch.sort(score[kept], descending=True, stable=True).indices
    out = keep.clone()
    out[kept[order[:n_drop]]] = False
    return out


def process(
    spec: WeakLabelSpec,
    p1: torch.Tensor,
    features: torch.Tensor | None,
    groups: list[str],
    fold_of: list[int],
) -> Processed:
    """Apply the probe and the confidence filter of `spec` to the pool's labels `p1` (already
    an ensemble's mean where the method has one); `features` are the strong model's, row for
    row, needed when `spec.probe` is set; `groups` keep related examples from vouching for
    each other; `fold_of` (groups kept whole) cross-fits the logistic probe."""
    p1 = p1.float()
    keep = torch.ones(len(p1), dtype=torch.bool)
    if spec.probe is not None:
        assert features is not None, "a probe needs the strong model's features"
        if spec.probe == "knn":
            predicted = knn_leave_one_out(features, p1, spec.k, groups)
        else:
            predicted = logistic_cross_fitted(features, p1, fold_of, spec.l2)
        if spec.probe_use == "relabel":
            p1 = predicted
        else:  # the examples whose weak label the probe contradicts most are left out
            keep = _drop_most((predicted - p1).abs(), keep, spec.filter_fraction)
    if spec.drop_least_confident > 0:
        keep = _drop_most(-(p1 - 0.5).abs(), keep, spec.drop_least_confident)
    return Processed(p1, keep)

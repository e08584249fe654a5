"""Folds for cross-fitting a bootstrap rung: each fold's labels come from a model that did
not train on that fold.

Related examples (one group) share a fold, so no model labels an example whose sibling it
trained on; groups are dealt in a seeded hash order to the smallest fold so far, so folds
come out near equal in size and do not depend on the order of the list.
"""

from __future__ import annotations

import hashlib

from w2s_ray.datasets import Example


def assign_folds(examples: list[Example], k: int, seed: int) -> dict[str, int]:
    """Each example's fold in 0..k-1, by example id."""
    if k < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {k}")
    groups: dict[str, list[str]] = {}
    for ex in examples:
        groups.setdefault(ex.group, []).append(ex.id)

    def rank(group: str) -> str:
        return hashlib.sha256(f"folds-{seed}\x00{group}".encode()).hexdigest()

    sizes = [0] * k
    fold_of: dict[str, int] = {}
    for group in sorted(groups, key=rank):
        fold = sizes.index(min(sizes))
        sizes[fold] += len(groups[group])
        fold_of.update(dict.fromkeys(groups[group], fold))
    return fold_of

"""Cross-fitting folds of a bootstrap rung: groups whole, sizes even, order-free."""

from __future__ import annotations

import pytest

from w2s_ray.datasets import Example
from w2s_ray.study.folds import assign_folds
from w2s_ray.study.plan import BOOTSTRAP_FOLDS


def _pool(n: int, group_size: int) -> list[Example]:
    return [Example(f"id{i:03d}", f"text {i}", i % 2, f"g{i // group_size}") for i in range(n)]


@pytest.mark.parametrize("group_size", [1, 3])
def test_each_fold_model_trains_on_all_but_one_fold_and_groups_stay_whole(group_size):
    pool = _pool(120, group_size)
    k = BOOTSTRAP_FOLDS
    fold_of = assign_folds(pool, k, seed=0)
    assert set(fold_of) == {ex.id for ex in pool} and set(fold_of.values()) == set(range(k))
    for ex in pool:  # siblings share a fold: no model labels what a sibling taught it
        assert all(fold_of[o.id] == fold_of[ex.id] for o in pool if o.group == ex.group)
    sizes = [sum(1 for f in fold_of.values() if f == fold) for fold in range(k)]
    assert max(sizes) - min(sizes) <= group_size
    # each fold model learns from at least 3/4 of the student half (2 folds gave 1/2)
    assert min(len(pool) - size for size in sizes) >= 0.75 * len(pool) - group_size


def test_folds_do_not_depend_on_list_order_and_move_with_the_seed():
    pool = _pool(60, 2)
    assert assign_folds(pool, 4, seed=1) == assign_folds(pool[::-1], 4, seed=1)
    assert assign_folds(pool, 4, seed=1) != assign_folds(pool, 4, seed=2)
    with pytest.raises(ValueError, match="at least 2 folds"):
        assign_folds(pool, 1, seed=0)

from collections import Counter

import pytest

from w2s_ray.data import DataConfig, make_splits, pool_and_test, split_halves
from w2s_ray.datasets import TaskData, make_examples
from w2s_ray.errors import UserError


def _task(n_groups: int = 60, per_group: int = 3) -> TaskData:
    rows = [
        (f"text {g}-{i}", (g + i) % 2 if g % 3 else 1, f"g{g}")
        for g in range(n_groups)
        for i in range(per_group)
    ]
    return TaskData(make_examples(rows), None)


def test_splits_are_deterministic_and_disjoint():
    task, cfg = _task(), DataConfig(n_train=80, n_test=30)
    a, b = make_splits("t", task, cfg, seed=1), make_splits("t", task, cfg, seed=1)
    assert [e.id for e in a.weak_train] == [e.id for e in b.weak_train]
    ids = [set(e.id for e in s) for s in (a.weak_train, a.student_train, a.test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_groups_never_straddle_splits():
    splits = make_splits("t", _task(), DataConfig(), seed=3)
    owners: dict[str, set[str]] = {}
    for name in ("weak_train", "student_train", "test"):
        for ex in getattr(splits, name):
            owners.setdefault(ex.group, set()).add(name)
    assert all(len(v) == 1 for v in owners.values())


def test_pool_and_test_are_class_balanced_and_capped():
    pool, test = pool_and_test("t", _task(200), DataConfig(n_train=100, n_test=40))
    assert Counter(e.label for e in pool) == {0: 50, 1: 50}
    assert Counter(e.label for e in test) == {0: 20, 1: 20}


def test_seed_changes_the_halving_but_not_the_test_set():
    task = _task()
    s0, s1 = make_splits("t", task, DataConfig(), 0), make_splits("t", task, DataConfig(), 1)
    assert [e.id for e in s0.test] == [e.id for e in s1.test]
    assert {e.id for e in s0.weak_train} != {e.id for e in s1.weak_train}
    assert abs(len(s0.weak_train) - len(s0.student_train)) <= 3


def test_halves_cover_the_pool():
    pool, _ = pool_and_test("t", _task(), DataConfig())
    weak, student = split_halves(pool, seed=7)
    assert sorted(e.id for e in weak + student) == sorted(e.id for e in pool)


def test_one_class_dataset_is_a_clear_error():
    task = TaskData(make_examples((f"t{i}", 1, f"g{i}") for i in range(50)), None)
    with pytest.raises(UserError, match="one class"):
        make_splits("onlypos", task, DataConfig(), 0)


def test_example_ids_are_text_hashes_and_duplicates_with_conflicting_labels_drop():
    examples = make_examples([("same", 1, "a"), ("same", 0, "b"), ("other", 1, "c"), ("", 0, "d")])
    assert [e.text for e in examples] == ["other"]
    assert make_examples([("other", 1, "x")])[0].id == examples[0].id

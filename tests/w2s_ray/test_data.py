from collections import Counter

import pytest

from w2s_ray.data import (
    DataConfig,
    make_splits,
    pool_and_test,
    select_pool_and_test,
    split_halves,
)
from w2s_ray.datasets import TaskData, example_id, make_examples
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


def _official_test_task() -> TaskData:
    """Train rows of 40 groups; the test split shares three of them (one passage's other
    questions, say) and repeats one train text outright."""
    train = make_examples(
        (f"train {g}-{i}", (g + i) % 2, f"g{g}") for g in range(40) for i in range(2)
    )
    test = make_examples(
        [(f"test {g}", g % 2, f"g{g}") for g in (0, 1, 2)]
        + [(f"test only {g}", g % 2, f"t{g}") for g in range(10)]
        + [("train 5-0", 1, "g5")]
    )
    return TaskData(train, test)


def test_pool_examples_related_to_a_test_example_are_dropped_and_counted():
    task = _official_test_task()
    chosen = select_pool_and_test("t", task, DataConfig(balance=False))
    test_groups = {ex.group for ex in chosen.test}
    assert test_groups == {"g0", "g1", "g2", "g5", *(f"t{g}" for g in range(10))}
    assert not any(ex.group in test_groups for ex in chosen.pool)
    pool_counts, test_counts = chosen.counts
    assert pool_counts.n_dropped_straddling == 8  # groups g0, g1, g2 and g5, two rows each
    assert pool_counts.n_available == 80 and pool_counts.n_used == 72
    assert test_counts.n_used == len(chosen.test) == 14


def test_a_too_long_filter_drops_and_still_fills_the_cap():
    task = _task(200)
    long_ids = {ex.id for ex in task.train[::3]}

    def too_long(texts):
        return [example_id(t) in long_ids for t in texts]

    chosen = select_pool_and_test("t", task, DataConfig(n_train=100, n_test=40), too_long)
    assert not any(ex.id in long_ids for ex in chosen.pool + chosen.test)
    assert Counter(e.label for e in chosen.pool) == {0: 50, 1: 50}
    pool_counts, test_counts = chosen.counts
    assert pool_counts.n_used == 100 and pool_counts.n_dropped_too_long > 0
    assert test_counts.n_dropped_too_long > 0
    # nothing beyond what the cap needed was measured: far fewer drops than long rows exist
    assert pool_counts.n_dropped_too_long + test_counts.n_dropped_too_long < len(long_ids)


def test_counts_say_when_the_dataset_holds_less_than_asked():
    chosen = select_pool_and_test("t", _task(30), DataConfig(n_train=5000, n_test=20))
    pool_counts, _ = chosen.counts
    assert pool_counts.n_requested == 5000 and pool_counts.n_used < 5000
    assert pool_counts.n_used == len(chosen.pool)

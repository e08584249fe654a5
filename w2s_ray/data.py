"""Deterministic, class-balanced, group-respecting splits: weak-train / student-train / test.

The test set and the train pool depend only on the dataset and the data config, so features
are computed once per model; the seed decides how the pool is halved, as in the paper.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from w2s_ray.datasets import Example, TaskData
from w2s_ray.errors import UserError

MIN_EXAMPLES_PER_SPLIT = 8


@dataclass(frozen=True)
class DataConfig:
    n_train: int | None = None  # cap on the train pool (both halves together)
    n_test: int | None = None
    test_fraction: float = 0.25  # only for tasks without an official test split
    balance: bool = True


@dataclass(frozen=True)
class Splits:
    weak_train: list[Example]  # ground truth: trains each weak supervisor and ceiling
    student_train: list[Example]  # labeled by the weak model, trains the student
    test: list[Example]  # ground truth, held out


def _rank(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}\x00{key}".encode()).hexdigest()


def pool_and_test(
    dataset: str, task: TaskData, cfg: DataConfig
) -> tuple[list[Example], list[Example]]:
    """Train pool and test set, fixed across seeds; test groups never appear in the pool."""
    if task.test is None:
        groups = sorted({ex.group for ex in task.train}, key=lambda g: _rank("test", g))
        n_test_groups = max(1, round(len(groups) * cfg.test_fraction))
        test_groups = set(groups[:n_test_groups])
        pool = [ex for ex in task.train if ex.group not in test_groups]
        test = [ex for ex in task.train if ex.group in test_groups]
    else:
        test_ids = {ex.id for ex in task.test}
        pool = [ex for ex in task.train if ex.id not in test_ids]
        test = list(task.test)
    if task.generative:  # answers, not classes: nothing to balance
        return _cap(dataset, "train", pool, cfg.n_train), _cap(dataset, "test", test, cfg.n_test)
    pool = _balance_and_cap(dataset, "train", pool, cfg.n_train, cfg.balance)
    test = _balance_and_cap(dataset, "test", test, cfg.n_test, cfg.balance)
    return pool, test


def _balance_and_cap(
    dataset: str, split: str, examples: list[Example], cap: int | None, balance: bool
) -> list[Example]:
    by_label: dict[int, list[Example]] = {0: [], 1: []}
    for ex in sorted(examples, key=lambda e: _rank(split, e.id)):
        if ex.label not in by_label:
            raise UserError(f"dataset '{dataset}': label {ex.label!r} is not 0 or 1")
        by_label[ex.label].append(ex)
    counts = {label: len(items) for label, items in by_label.items()}
    if min(counts.values()) == 0:
        raise UserError(
            f"dataset '{dataset}' {split} split has one class only (counts {counts}): a "
            "weak-to-strong study needs both labels — check the labels or pick another dataset"
        )
    if balance:
        per_class = min(counts.values())
        if cap is not None:
            per_class = min(per_class, cap // 2)
        return _enough(dataset, split, by_label[0][:per_class] + by_label[1][:per_class])
    return _cap(dataset, split, examples, cap)


def _cap(dataset: str, split: str, examples: list[Example], cap: int | None) -> list[Example]:
    return _enough(dataset, split, sorted(examples, key=lambda e: _rank(split, e.id))[:cap])


def _enough(dataset: str, split: str, chosen: list[Example]) -> list[Example]:
    if len(chosen) < MIN_EXAMPLES_PER_SPLIT:
        raise UserError(
            f"dataset '{dataset}' {split} split has {len(chosen)} examples after balancing; "
            f"at least {MIN_EXAMPLES_PER_SPLIT} are needed — raise n_{split} or use more data"
        )
    return sorted(chosen, key=lambda e: e.id)


def split_halves(pool: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """Halve the pool by group (seeded), filling the smaller half so sizes stay even."""
    groups: dict[str, list[Example]] = {}
    for ex in pool:
        groups.setdefault(ex.group, []).append(ex)
    weak: list[Example] = []
    student: list[Example] = []
    for group in sorted(groups, key=lambda g: _rank(f"halves-{seed}", g)):
        (weak if len(weak) <= len(student) else student).extend(groups[group])
    return sorted(weak, key=lambda e: e.id), sorted(student, key=lambda e: e.id)


def make_splits(dataset: str, task: TaskData, cfg: DataConfig, seed: int) -> Splits:
    pool, test = pool_and_test(dataset, task, cfg)
    weak_train, student_train = split_halves(pool, seed)
    return Splits(weak_train, student_train, test)


def ids_digest(examples: list[Example]) -> str:
    """A short hash of which examples (and in which order) a cache entry covers."""
    return hashlib.sha256("\n".join(ex.id for ex in examples).encode()).hexdigest()[:16]

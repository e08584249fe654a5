"""Deterministic, class-balanced, group-respecting splits: weak-train / student-train / test.

The test set and the train pool depend only on the dataset and the data config, so features
are computed once per model; the seed decides how the pool is halved, as in the paper.
Whatever is left out on the way (too long, related to a test example, beyond what the
dataset holds) is counted, so a study can say what its numbers rest on.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from w2s_ray.datasets import Example, TaskData
from w2s_ray.errors import UserError

MIN_EXAMPLES_PER_SPLIT = 8
# Examples measured per round when too-long ones are dropped: a capped split walks its
# candidates in rank order and stops once it has enough, rather than tokenizing the dataset.
MEASURE_CHUNK = 512

# Given texts, which are too long for some model of the study (dropped under `drop`).
TooLongFilter = Callable[[Sequence[str]], list[bool]]


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


@dataclass(frozen=True)
class SplitCounts:
    """How one split (the train pool, or the test set) came to hold what it holds."""

    split: str  # "pool" or "test"
    n_available: int  # examples the dataset offers for it (after de-duplication)
    n_requested: int | None  # the cap asked for (data.n_train / data.n_test)
    n_used: int
    n_dropped_too_long: int = 0  # measured over the limit and dropped (`too_long: drop`)
    n_dropped_straddling: int = 0  # pool examples related to a test example (same group)


@dataclass(frozen=True)
class PoolAndTest:
    pool: list[Example]
    test: list[Example]
    counts: tuple[SplitCounts, SplitCounts]  # pool, test


def _rank(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}\x00{key}".encode()).hexdigest()


def select_pool_and_test(
    dataset: str, task: TaskData, cfg: DataConfig, too_long: TooLongFilter | None = None
) -> PoolAndTest:
    """Train pool and test set, fixed across seeds. No pool example shares a group with a test
    example (related texts: one passage's questions, one prompt's dialogues); `too_long`
    (given under `too_long: drop`) leaves out texts some model would have to cut."""
    if task.test is None:
        groups = sorted({ex.group for ex in task.train}, key=lambda g: _rank("test", g))
        n_test_groups = max(1, round(len(groups) * cfg.test_fraction))
        test_groups = set(groups[:n_test_groups])
        pool = [ex for ex in task.train if ex.group not in test_groups]
        test_candidates = [ex for ex in task.train if ex.group in test_groups]
    else:
        pool, test_candidates = list(task.train), list(task.test)
    select = functools.partial(
        _select, dataset, cfg=cfg, too_long=too_long, answers=task.generative
    )
    test, test_counts = select("test", test_candidates, cfg.n_test)
    used_ids, used_groups = {ex.id for ex in test}, {ex.group for ex in test}
    unrelated = [ex for ex in pool if ex.id not in used_ids and ex.group not in used_groups]
    pool, pool_counts = select("train", unrelated, cfg.n_train)
    straddling = len(task.train) - len(unrelated) if task.test is not None else 0
    pool_counts = SplitCounts(
        "pool",
        len(unrelated) + straddling,
        cfg.n_train,
        pool_counts.n_used,
        pool_counts.n_dropped_too_long,
        straddling,
    )
    return PoolAndTest(pool, test, (pool_counts, test_counts))


def pool_and_test(
    dataset: str, task: TaskData, cfg: DataConfig, too_long: TooLongFilter | None = None
) -> tuple[list[Example], list[Example]]:
    selected = select_pool_and_test(dataset, task, cfg, too_long)
    return selected.pool, selected.test


def _select(
    dataset: str,
    split: str,
    examples: list[Example],
    cap: int | None,
    *,
    cfg: DataConfig,
    too_long: TooLongFilter | None,
    answers: bool,
) -> tuple[list[Example], SplitCounts]:
    ranked = sorted(examples, key=lambda e: _rank(split, e.id))
    name = "pool" if split == "train" else split
    if answers or not cfg.balance:  # answers have no classes to balance
        if not answers:
            _check_classes(dataset, split, ranked)
        chosen, dropped = _first_fitting(ranked, cap, too_long)
    else:
        by_label = _check_classes(dataset, split, ranked)
        want = None if cap is None else cap // 2
        kept = {}
        dropped = 0
        for label, items in by_label.items():
            kept[label], n_dropped = _first_fitting(items, want, too_long)
            dropped += n_dropped
        per_class = min(len(items) for items in kept.values())
        chosen = kept[0][:per_class] + kept[1][:per_class]
    chosen = _enough(dataset, split, chosen)
    return chosen, SplitCounts(name, len(examples), cap, len(chosen), dropped)


def _check_classes(dataset: str, split: str, ranked: list[Example]) -> dict[int, list[Example]]:
    by_label: dict[int, list[Example]] = {0: [], 1: []}
    for ex in ranked:
        if ex.label not in by_label:
            raise UserError(f"dataset '{dataset}': label {ex.label!r} is not 0 or 1")
        by_label[ex.label].append(ex)
    counts = {label: len(items) for label, items in by_label.items()}
    if min(counts.values()) == 0:
        raise UserError(
            f"dataset '{dataset}' {split} split has one class only (counts {counts}): a "
            "weak-to-strong study needs both labels — check the labels or pick another dataset"
        )
    return by_label


def _first_fitting(
    ranked: list[Example], want: int | None, too_long: TooLongFilter | None
) -> tuple[list[Example], int]:
    """The first `want` examples (all when None) that fit, and how many were dropped on the
    way; without a filter, simply the first `want`."""
    if too_long is None:
        return ranked[:want], 0
    kept: list[Example] = []
    dropped, start = 0, 0
    while start < len(ranked) and (want is None or len(kept) < want):
        need = MEASURE_CHUNK if want is None else max(want - len(kept), 1) + MEASURE_CHUNK // 8
        chunk = ranked[start : start + need]
        start += len(chunk)
        for ex, over in zip(chunk, too_long([ex.text for ex in chunk]), strict=True):
            if over:
                dropped += 1
            elif want is None or len(kept) < want:
                kept.append(ex)
    return kept, dropped


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


def halves(pool: list[Example], test: list[Example], seed: int) -> Splits:
    weak_train, student_train = split_halves(pool, seed)
    return Splits(weak_train, student_train, test)


def make_splits(
    dataset: str,
    task: TaskData,
    cfg: DataConfig,
    seed: int,
    too_long: TooLongFilter | None = None,
) -> Splits:
    pool, test = pool_and_test(dataset, task, cfg, too_long)
    return halves(pool, test, seed)


def ids_digest(examples: list[Example]) -> str:
    """A short hash of which examples (and in which order) a cache entry covers."""
    return hashlib.sha256("\n".join(ex.id for ex in examples).encode()).hexdigest()[:16]

"""What every hub task shares: the example type, the task record, and the small rules that
turn a multiple-choice or imbalanced dataset into a balanced binary one.

Converters are pure functions of (rows, seed) so they can be tested on hand-written rows
that follow each dataset's hub schema, without a network.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from w2s_ray.errors import UserError
from w2s_ray.infer.prompts import PromptFormat

Row = Mapping[str, Any]


class RawExample(TypedDict):
    text: str
    label: int  # 0 or 1
    group: str  # related examples share it, so they never straddle a split


Converter = Callable[[Iterable[Mapping[str, Any]], int], list[RawExample]]
# Regroups the train and test splits together, for tasks whose related rows can only be
# recognised side by side (a phrase and the sentence it was cut from): (train, test) in and out.
Splits = tuple[list[RawExample], list[RawExample]]
Regrouper = Callable[[list[RawExample], list[RawExample]], Splits]

# The reference implementation's context (max_ctx): it drops longer inputs.
MAX_CONTEXT = 1024


@dataclass(frozen=True)
class HubTask:
    name: str
    hf_path: str
    hf_config: str | None
    train_split: str
    test_split: str
    convert: Converter
    description: str
    license: str
    # The hub's parquet conversion branch, for datasets whose main branch is still a loading
    # script (datasets >= 4 no longer runs those).
    revision: str | None = None
    balance: bool = False  # subsample the majority class: the paper's tasks are balanced
    # How the zero/few-shot baselines put the task: its question and the answer words for
    # label 0 and label 1.
    prompt: PromptFormat = field(kw_only=True)
    # Tokens (GPT-2 BPE) that nearly every real input needs, at most MAX_CONTEXT: the default
    # `train.max_length` for the task.
    max_length: int = field(kw_only=True)
    regroup: Regrouper | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if not 0 < self.max_length <= MAX_CONTEXT:
            raise ValueError(f"hub task {self.name}: max_length {self.max_length} not in 1..1024")


class HubUnreachableError(UserError, RuntimeError):
    """A hub dataset could be neither downloaded nor found in the local HF cache."""


def group_key(task: str, key: str) -> str:
    # A content hash rather than a row index: stable however the hub orders or shards rows.
    return f"{task}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def pick_answer(rng: random.Random, options: Sequence[str], gold: int) -> tuple[int, str]:
    """A fair coin: the gold option (label 1) or one of the others drawn uniformly (label 0)."""
    if rng.random() < 0.5:
        return 1, options[gold]
    wrong = [option for i, option in enumerate(options) if i != gold and option != options[gold]]
    if not wrong:  # every option reads as the gold one: showing any of them is correct
        return 1, options[gold]
    return 0, rng.choice(wrong)


def gold_index(task: str, row: Row, value: Any, n_options: int) -> int:
    """`value` as a 0-based option index, or a clear error for hidden (test-split) answers."""
    try:
        index = int(str(value).strip())
    except ValueError:
        index = -1
    if not 0 <= index < n_options:
        raise ValueError(
            f"{task} row {row.get('id', row.get('idx', '?'))!r} has no gold answer "
            f"(label={value!r}): the hub hides test-split answers — use the labelled "
            "'validation' split for testing"
        )
    return index


def checked_label(task: str, row: Row, value: Any) -> int:
    """A 0/1 label, or a clear error for the -1 the hub puts on hidden test labels."""
    if value in (0, 1, True, False):
        return int(value)
    raise ValueError(
        f"{task} row {row.get('idx', row.get('id', '?'))!r} has label {value!r}, not 0/1: the "
        "hub hides test-split labels — use the labelled 'validation' split for testing"
    )


def balance_classes(examples: list[RawExample], seed: int) -> list[RawExample]:
    """Keep every example of the rarer class and as many of the other, drawn at random;
    order is kept, so groups and splits are unaffected."""
    by_label: dict[int, list[int]] = {0: [], 1: []}
    for i, example in enumerate(examples):
        by_label[example["label"]].append(i)
    keep = min(len(by_label[0]), len(by_label[1]))
    rng = random.Random(seed)
    kept = {i for indices in by_label.values() for i in rng.sample(indices, keep)}
    return [example for i, example in enumerate(examples) if i in kept]


def labeled_converter(
    task: str,
    text_and_key: Callable[[Row], tuple[str, str]],
    label: Callable[[Row], int] | None = None,
) -> Converter:
    """A converter for rows that carry their answer: `text_and_key` gives the shown text and the
    group key; the label is the row's checked 0/1 `label` unless `label` derives it."""

    def convert(rows: Iterable[Row], seed: int) -> list[RawExample]:
        del seed  # nothing is sampled
        out: list[RawExample] = []
        for row in rows:
            text, key = text_and_key(row)
            value = label(row) if label else checked_label(task, row, row["label"])
            out.append(RawExample(text=text, label=value, group=group_key(task, key)))
        return out

    return convert

"""The paper's Hugging Face hub tasks, binarised the way its reference code does.

Converters are pure functions of (rows, seed) so they can be tested on hand-written rows
that follow each dataset's hub schema, without a network.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from w2s_ray.errors import UserError


class RawExample(TypedDict):
    text: str
    label: int  # 0 or 1
    group: str  # related examples share it, so they never straddle a split


Converter = Callable[[Iterable[Mapping[str, Any]], int], list[RawExample]]


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


class HubUnreachableError(UserError, RuntimeError):
    """A hub dataset could be neither downloaded nor found in the local HF cache."""


def _group(task: str, key: str) -> str:
    # A content hash rather than a row index: stable however the hub orders or shards rows.
    return f"{task}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def convert_sciq(rows: Iterable[Mapping[str, Any]], seed: int) -> list[RawExample]:
    # One RNG walked row by row, drawing in the reference's order, so that a given seed
    # shows the same answers the reference would for rows in hub order.
    rng = random.Random(seed)
    out: list[RawExample] = []
    for row in rows:
        label = int(rng.random() < 0.5)
        if label:
            answer = row["correct_answer"]
        else:
            answer = rng.choice([row["distractor1"], row["distractor2"], row["distractor3"]])
        text = f"Q: {row['question']} A: {answer}"
        out.append(RawExample(text=text, label=label, group=_group("sciq", row["question"])))
    return out


def convert_boolq(rows: Iterable[Mapping[str, Any]], seed: int) -> list[RawExample]:
    del seed  # the gold yes/no answer is the label; nothing is sampled
    return [
        RawExample(
            text=f"Passage: {row['passage']}\nQuestion: {row['question']}",
            label=int(row["answer"]),
            # Questions about one passage share it, so the passage must not leak across splits.
            group=_group("boolq", row["passage"]),
        )
        for row in rows
    ]


def convert_amazon_polarity(rows: Iterable[Mapping[str, Any]], seed: int) -> list[RawExample]:
    del seed  # the review's own polarity is the label; nothing is sampled
    out: list[RawExample] = []
    for row in rows:
        text = f"{row['title']} {row['content']}"
        label = int(row["label"])
        out.append(RawExample(text=text, label=label, group=_group("amazon_polarity", text)))
    return out


# Cosmos QA's placeholder option; the reference never shows it as a correct answer.
_COSMOS_NONE = "None of the above choices"


def _cosmos_gold(row: Mapping[str, Any]) -> str:
    gold = row["label"]
    if gold not in (0, 1, 2, 3):
        # The hub's "test" split carries label -1: its answers are hidden.
        raise ValueError(
            f"cosmos_qa row {row.get('id', '?')!r} has no gold answer (label={gold!r}); "
            "use the labelled 'validation' split for testing"
        )
    return row[f"answer{gold}"]


def convert_cosmos_qa(rows: Iterable[Mapping[str, Any]], seed: int) -> list[RawExample]:
    rng = random.Random(seed)  # walked row by row in the reference's draw order
    out: list[RawExample] = []
    for row in rows:
        gold = _cosmos_gold(row)
        # A gold "none of the above" reads as nonsense when shown as the answer, so such
        # questions only ever yield a negative (and draw no coin, as in the reference).
        label = 0 if _COSMOS_NONE in gold else int(rng.random() < 0.5)
        if label:
            answer = gold
        else:
            wrong = [row[f"answer{i}"] for i in range(4) if row[f"answer{i}"] != gold]
            answer = rng.choice(wrong)
        text = f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: {answer}"
        # Several questions are asked about one narrative; they travel together.
        out.append(RawExample(text=text, label=label, group=_group("cosmos_qa", row["context"])))
    return out


_HH_TURN = "\n\nAssistant:"


def _hh_prompt(chosen: str, rejected: str) -> str:
    """The dialogue both responses continue: their common prefix, cut at the last turn."""
    # zip stops at the shorter text, whose end is then the default split point.
    diverge = (i for i, (a, b) in enumerate(zip(chosen, rejected, strict=False)) if a != b)
    shared = chosen[: next(diverge, min(len(chosen), len(rejected)))]
    cut = shared.rfind(_HH_TURN)
    # Cutting at a turn boundary keeps the key identical when two responses merely happen
    # to start with the same words.
    return shared[: cut + len(_HH_TURN)] if cut >= 0 else shared


def convert_anthropic_hh(rows: Iterable[Mapping[str, Any]], seed: int) -> list[RawExample]:
    rng = random.Random(seed)  # walked row by row in the reference's draw order
    out: list[RawExample] = []
    for row in rows:
        label = int(rng.random() < 0.5)
        text = row["chosen"] if label else row["rejected"]
        group = _group("anthropic_hh", _hh_prompt(row["chosen"], row["rejected"]))
        out.append(RawExample(text=text, label=label, group=group))
    return out


HUB_TASKS: dict[str, HubTask] = {
    task.name: task
    for task in (
        HubTask(
            "sciq",
            "allenai/sciq",
            None,
            "train",
            "test",
            convert_sciq,
            "science exam question with the correct answer or a random distractor (50/50): "
            "'Q: {question} A: {answer}', 1 = correct",
            "CC-BY-NC-3.0",
        ),
        HubTask(
            "boolq",
            "google/boolq",
            None,
            "train",
            "validation",
            convert_boolq,
            "yes/no question on a Wikipedia passage: 'Passage: {passage}\\nQuestion: "
            "{question}', 1 = yes",
            "CC-BY-SA-3.0",
        ),
        HubTask(
            "amazon_polarity",
            "fancyzhx/amazon_polarity",
            None,
            "train",
            "test",
            convert_amazon_polarity,
            "Amazon review '{title} {content}', 1 = positive",
            "Apache-2.0",
        ),
        HubTask(
            "cosmos_qa",
            "allenai/cosmos_qa",
            None,
            "train",
            "validation",
            convert_cosmos_qa,
            "'Context: {context}\\nQuestion: {question}\\nAnswer: {answer}' with the gold or a "
            "random wrong option (50/50; gold 'None of the above' always wrong), 1 = gold",
            "CC-BY-4.0",
        ),
        HubTask(
            "anthropic_hh",
            "Anthropic/hh-rlhf",
            None,
            "train",
            "test",
            convert_anthropic_hh,
            "a dialogue ending in the chosen or the rejected response (50/50), 1 = chosen",
            "MIT",
        ),
    )
}


def _hub_split(task: HubTask, split: str) -> str:
    # "train"/"test" name the task's roles; any other name is taken as a hub split as is.
    return {"train": task.train_split, "test": task.test_split}.get(split, split)


def load_hub_task(
    task: HubTask, split: str, *, trust_remote_code: bool = False
) -> list[RawExample]:
    """Load one split of `task` from the hub (or the HF cache) and convert it with seed 0."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetNotFoundError

    hub_split = _hub_split(task, split)
    # datasets >= 4 no longer runs loading scripts and logs an error when asked to, so the
    # flag is only passed when a caller explicitly wants it.
    extra: dict[str, Any] = {"trust_remote_code": True} if trust_remote_code else {}
    try:
        rows = load_dataset(task.hf_path, task.hf_config, split=hub_split, **extra)
    except (OSError, DatasetNotFoundError) as exc:
        # Network, offline-mode and cache misses all surface as OSError subclasses here
        # (requests, httpx-backed hub errors, FileNotFoundError); other errors are bugs.
        raise HubUnreachableError(
            f"dataset '{task.name}' ({task.hf_path}, split '{hub_split}') could not be "
            "loaded: the Hugging Face hub is unreachable and the dataset is not in the local "
            f"HF cache. Pre-download it on a machine with internet "
            f"(datasets.load_dataset('{task.hf_path}')), copy the HF cache (HF_HOME) here "
            f"and set HF_DATASETS_OFFLINE=1. Cause: {type(exc).__name__}: {exc}"
        ) from exc
    return task.convert(rows, 0)

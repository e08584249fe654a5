"""Zero- and few-shot prompts for binary tasks, and their token ids. Pure functions.

Both inference backends score the very same token ids, so tokenization happens once,
here: the prompt with the tokenizer's special tokens, each answer's continuation without.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the vLLM test environment installs only what inference needs
    from w2s_ray.datasets import Example


@dataclass(frozen=True)
class PromptFormat:
    """How a task is put to a language model: an instruction, then text/answer blocks."""

    instruction: str
    answer_prefix: str = "Answer:"
    choices: tuple[str, str] = (" No", " Yes")  # continuations for label 0 and label 1

    def block(self, text: str, label: int | None = None) -> str:
        answer = self.choices[label] if label is not None else ""
        return f"{text}\n{self.answer_prefix}{answer}"

    def identity(self) -> dict[str, Any]:
        """What changes the prompts, for cache keys."""
        return {
            "instruction": self.instruction,
            "answer_prefix": self.answer_prefix,
            "choices": list(self.choices),
        }


SENTIMENT = PromptFormat(
    "Is the sentiment of each text positive or negative?",
    "Sentiment:",
    (" negative", " positive"),
)
GENERIC = PromptFormat("Does each text belong to the positive class? Answer Yes or No.")


def format_for(dataset: str) -> PromptFormat:
    """The prompt a registered task's card defines (beside its converter, for hub tasks);
    GENERIC only for a user's local dataset that brings none (`baselines.prompt`)."""
    from w2s_ray.datasets import DATASETS  # imported here: the registry imports this module

    card = DATASETS.get(dataset) if dataset in DATASETS else None
    return card.prompt if card is not None and card.prompt is not None else GENERIC


@dataclass(frozen=True)
class Demonstration:
    text: str
    label: int


def draw_demonstrations(
    pool: list[Example], labels: dict[str, int], k: int, seed: int
) -> list[Demonstration]:
    """`k` examples from `pool` shown with `labels` (ground truth or a weak model's), half of
    each shown class where the pool allows, in a seeded random order.

    Balanced demonstrations keep the prompt from pushing the model towards one answer.
    """
    if k <= 0:
        return []
    rng = random.Random(seed)
    by_label: dict[int, list[Example]] = {0: [], 1: []}
    for ex in pool:
        by_label[labels[ex.id]].append(ex)
    for examples in by_label.values():
        rng.shuffle(examples)
    want = {0: k // 2, 1: k - k // 2}
    if rng.random() < 0.5:  # the odd one out goes to either class
        want = {0: want[1], 1: want[0]}
    chosen = []
    for label in (0, 1):
        spare = len(by_label[1 - label]) - want[1 - label]
        take = min(len(by_label[label]), want[label] + max(0, -spare))
        chosen += [Demonstration(ex.text, label) for ex in by_label[label][:take]]
    chosen = chosen[:k]
    rng.shuffle(chosen)
    return chosen


def build_prompt(fmt: PromptFormat, demos: list[Demonstration], text: str) -> str:
    parts = [fmt.instruction, *(fmt.block(d.text, d.label) for d in demos), fmt.block(text)]
    return "\n\n".join(parts)


@dataclass(frozen=True)
class ScoringInputs:
    """Token ids to score: each prompt, and each answer's continuation."""

    prompts: list[list[int]]
    choices: list[list[int]]
    demos_used: list[int]  # demonstrations that fitted the context, per prompt


def encode_for_scoring(
    tokenizer: Any,
    fmt: PromptFormat,
    demos: list[Demonstration],
    texts: list[str],
    max_tokens: int,
) -> ScoringInputs:
    """Prompts as token ids, dropping trailing demonstrations until prompt and longest answer
    fit `max_tokens`; a text too long even alone keeps its end (where the question is)."""
    choices = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in fmt.choices]
    if any(not ids for ids in choices):
        raise ValueError(f"an answer of {fmt.choices} tokenizes to nothing")
    budget = max_tokens - max(len(ids) for ids in choices)
    prompts, used = [], []
    for text in texts:
        n = len(demos)
        while True:
            ids = tokenizer(build_prompt(fmt, demos[:n], text))["input_ids"]
            if len(ids) <= budget or n == 0:
                break
            n -= 1
        prompts.append(keep_end(list(ids), budget, tokenizer))
        used.append(n)
    return ScoringInputs(prompts, choices, used)


def keep_end(ids: list[int], budget: int, tokenizer: Any) -> list[int]:
    """The last `budget` ids, after the beginning-of-text token if the tokenizer adds one."""
    if len(ids) <= budget:
        return ids
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and ids and ids[0] == bos:
        return [bos, *ids[len(ids) - budget + 1 :]]
    return ids[len(ids) - budget :]

"""Inputs longer than `max_length` tokens: keep their end, drop them, or refuse the study.

In the paper's QA tasks the question and the candidate answer sit at the end of the text
(boolq, cosmos_qa, quail, multirc, dream, sciq, ...), and an hh-rlhf dialogue's chosen and
rejected replies differ only in their last turn; cutting from the right would show the model
the passage without the question, or two identical texts with opposite labels. So inputs
keep their last tokens, with the tokenizer's special tokens ([CLS] … [SEP], a BOS) placed as
for any input. The reference code instead drops examples over its 1024-token context
(policy `drop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

TooLong = Literal["keep_end", "drop", "error"]


def encode_keep_end(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids (special tokens included, no padding), each cut to its last `max_length`."""
    side = getattr(tokenizer, "truncation_side", "right")
    tokenizer.truncation_side = "left"  # the tokenizer cuts the start, then adds specials
    try:
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    finally:
        tokenizer.truncation_side = side
    return [list(ids) for ids in encoded["input_ids"]]


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Each text's full length in tokens, special tokens included (nothing cut)."""
    verbose = getattr(tokenizer, "verbose", None)
    if verbose is not None:
        tokenizer.verbose = False  # no "longer than the model's maximum" warning: we count
    try:
        encoded = tokenizer(list(texts), truncation=False, padding=False)
    finally:
        if verbose is not None:
            tokenizer.verbose = verbose
    return [len(ids) for ids in encoded["input_ids"]]


def conflicting_positions(token_ids: Sequence[Sequence[int]], labels: Sequence[int]) -> set[int]:
    """Positions whose input is identical to another one's with a different label: after a
    cut, the model cannot tell them apart, so neither can teach it anything."""
    by_input: dict[tuple[int, ...], set[int]] = {}
    for ids, label in zip(token_ids, labels, strict=True):
        by_input.setdefault(tuple(ids), set()).add(label)
    return {i for i, ids in enumerate(token_ids) if len(by_input[tuple(ids)]) > 1}


@dataclass(frozen=True)
class LadderTokenizers:
    """The distinct tokenizers of a study's ladder, to measure texts as every model sees them.

    An example is too long when any model would have to cut it: under `drop` and `error` the
    decision must be the same for every model, or weak and strong would be compared on
    different examples.
    """

    tokenizers: tuple[tuple[str, Any], ...]  # (a model using it, the tokenizer)
    max_length: int

    def too_long(self, texts: Sequence[str]) -> list[bool]:
        over = [False] * len(texts)
        for _, tokenizer in self.tokenizers:
            for i, n in enumerate(token_lengths(tokenizer, texts)):
                over[i] = over[i] or n > self.max_length
        return over

"""Tasks of the paper's suite whose rows already carry a binary judgement (or a pair that
makes one): sentiment, acceptability, paraphrase, word sense, candidate-answer plausibility,
entailment and the ETHICS subsets. Labels are checked, never guessed: a hidden test label
(-1) is an error that names the labelled split to use instead.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from w2s_ray.hub_tasks.common import RawExample, Row, checked_label, convert_rows, group_key


def convert_sst2(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed
    return convert_rows(
        "sst2", rows, lambda r: (r["sentence"], checked_label("sst2", r, r["label"]), r["sentence"])
    )


def convert_cola(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed
    return convert_rows(
        "cola", rows, lambda r: (r["sentence"], checked_label("cola", r, r["label"]), r["sentence"])
    )


def convert_paws(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed

    def make(r: Row) -> tuple[str, int, str]:
        text = f"Sentence 1: {r['sentence1']}\nSentence 2: {r['sentence2']}"
        return text, checked_label("paws", r, r["label"]), r["sentence1"]

    return convert_rows("paws", rows, make)


def convert_wic(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed

    def make(r: Row) -> tuple[str, int, str]:
        text = f"Word: {r['word']}\nSentence 1: {r['sentence1']}\nSentence 2: {r['sentence2']}"
        return text, checked_label("wic", r, r["label"]), f"{r['word']}|{r['sentence1']}"

    return convert_rows("wic", rows, make)


def convert_multirc(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed

    def make(r: Row) -> tuple[str, int, str]:
        text = f"Paragraph: {r['paragraph']}\nQuestion: {r['question']}\nAnswer: {r['answer']}"
        return text, checked_label("multirc", r, r["label"]), r["paragraph"]

    return convert_rows("multirc", rows, make)


def convert_mc_taco(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed

    def make(r: Row) -> tuple[str, int, str]:
        text = f"{r['sentence']}\nQuestion: {r['question']}\nAnswer: {r['answer']}"
        return text, checked_label("mc_taco", r, r["label"]), r["sentence"]

    return convert_rows("mc_taco", rows, make)


def convert_anli(rows: Iterable[Row], seed: int) -> list[RawExample]:
    """Entailment (label 0 on the hub) against neutral or contradiction."""
    del seed

    def make(r: Row) -> tuple[str, int, str]:
        if r["label"] not in (0, 1, 2):
            raise ValueError(f"anli row {r.get('uid', '?')!r} has label {r['label']!r}, not 0/1/2")
        text = f"Premise: {r['premise']}\nHypothesis: {r['hypothesis']}"
        return text, int(r["label"] == 0), r["premise"]

    return convert_rows("anli_r2", rows, make)


def convert_twitter_sentiment(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed
    return convert_rows(
        "twitter_sentiment",
        rows,
        lambda r: (r["text"], checked_label("twitter_sentiment", r, r["label"]), r["text"]),
    )


def convert_ethics_justice(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed
    return convert_rows(
        "ethics_justice",
        rows,
        lambda r: (r["scenario"], checked_label("ethics_justice", r, r["label"]), r["scenario"]),
    )


def convert_ethics_deontology(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed

    def make(r: Row) -> tuple[str, int, str]:
        text = f"Request: {r['scenario']}\nExcuse: {r['excuse']}"
        # the excuses offered for one request travel together
        return text, checked_label("ethics_deontology", r, r["label"]), r["scenario"]

    return convert_rows("ethics_deontology", rows, make)


def convert_ethics_virtue(rows: Iterable[Row], seed: int) -> list[RawExample]:
    del seed

    def make(r: Row) -> tuple[str, int, str]:
        sentence, _, trait = str(r["scenario"]).partition(" [SEP] ")
        if not trait:
            raise ValueError(f"ethics_virtue scenario {r['scenario']!r} lacks ' [SEP] trait'")
        text = f"{sentence}\nTrait: {trait}"
        # the traits asked of one sentence travel together
        return text, checked_label("ethics_virtue", r, r["label"]), sentence

    return convert_rows("ethics_virtue", rows, make)


def convert_ethics_utilitarianism(rows: Iterable[Row], seed: int) -> list[RawExample]:
    """The hub lists the more pleasant scenario first (`baseline`); a fair coin orders the pair
    and the label says whether the first shown is the more pleasant one."""
    rng = random.Random(seed)
    out: list[RawExample] = []
    for r in rows:
        label = int(rng.random() < 0.5)
        first, second = (r["baseline"], r["less_pleasant"])[:: 1 if label else -1]
        text = f"Scenario 1: {first}\nScenario 2: {second}"
        out.append(
            RawExample(text=text, label=label, group=group_key("ethics_util", r["baseline"]))
        )
    return out

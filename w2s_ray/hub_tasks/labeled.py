"""Tasks of the paper's suite whose rows already carry a binary judgement (or a pair that
makes one): sentiment, acceptability, paraphrase, word sense, candidate-answer plausibility,
entailment and the ETHICS subsets. Labels are checked, never guessed: a hidden test label
(-1) is an error that names the labelled split to use instead.

Each group key keeps related rows together: the candidate answers of one question, the
excuses of one request, the traits asked of one sentence.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from w2s_ray.hub_tasks.common import RawExample, Row, group_key, labeled_converter

convert_sst2 = labeled_converter("sst2", lambda r: (r["sentence"], r["sentence"]))
convert_cola = labeled_converter("cola", lambda r: (r["sentence"], r["sentence"]))
convert_twitter_sentiment = labeled_converter("twitter_sentiment", lambda r: (r["text"], r["text"]))
convert_ethics_justice = labeled_converter(
    "ethics_justice", lambda r: (r["scenario"], r["scenario"])
)
convert_paws = labeled_converter(
    "paws",
    lambda r: (f"Sentence 1: {r['sentence1']}\nSentence 2: {r['sentence2']}", r["sentence1"]),
)
convert_wic = labeled_converter(
    "wic",
    lambda r: (
        f"Word: {r['word']}\nSentence 1: {r['sentence1']}\nSentence 2: {r['sentence2']}",
        f"{r['word']}|{r['sentence1']}",
    ),
)
convert_multirc = labeled_converter(
    "multirc",
    lambda r: (
        f"Paragraph: {r['paragraph']}\nQuestion: {r['question']}\nAnswer: {r['answer']}",
        r["paragraph"],
    ),
)
convert_mc_taco = labeled_converter(
    "mc_taco",
    lambda r: (f"{r['sentence']}\nQuestion: {r['question']}\nAnswer: {r['answer']}", r["sentence"]),
)
convert_ethics_deontology = labeled_converter(
    "ethics_deontology",
    lambda r: (f"Request: {r['scenario']}\nExcuse: {r['excuse']}", r["scenario"]),
)


def _entailment(row: Row) -> int:
    """ANLI's label 0 is entailment; neutral (1) and contradiction (2) are both 0 here."""
    if row["label"] not in (0, 1, 2):
        raise ValueError(f"anli row {row.get('uid', '?')!r} has label {row['label']!r}, not 0/1/2")
    return int(row["label"] == 0)


convert_anli = labeled_converter(
    "anli_r2",
    lambda r: (f"Premise: {r['premise']}\nHypothesis: {r['hypothesis']}", r["premise"]),
    label=_entailment,
)


def _virtue_text_and_key(row: Row) -> tuple[str, str]:
    sentence, _, trait = str(row["scenario"]).partition(" [SEP] ")
    if not trait:
        raise ValueError(f"ethics_virtue scenario {row['scenario']!r} lacks ' [SEP] trait'")
    return f"{sentence}\nTrait: {trait}", sentence


convert_ethics_virtue = labeled_converter("ethics_virtue", _virtue_text_and_key)


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

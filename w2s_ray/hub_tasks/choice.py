"""Multiple-choice tasks of the paper's suite made binary as it describes: a question shown with
either its gold answer (label 1) or a wrong option drawn at random (label 0), by a fair coin.

One RNG walks the rows in hub order, so a seed always shows the same answers. Questions about
one passage, dialogue or context share a group, so they never straddle a split.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from w2s_ray.hub_tasks.common import RawExample, Row, gold_index, group_key, pick_answer

LETTERS = "ABCDEFGH"


def _choice_task(
    task: str,
    rows: Iterable[Row],
    seed: int,
    parts: Callable[[Row], tuple[str, list[str], int, str]],  # prompt, options, gold, group
) -> list[RawExample]:
    rng = random.Random(seed)
    out: list[RawExample] = []
    for row in rows:
        prompt, options, gold, key = parts(row)
        label, answer = pick_answer(rng, options, gold)
        out.append(RawExample(text=f"{prompt}{answer}", label=label, group=group_key(task, key)))
    return out


def convert_dream(rows: Iterable[Row], seed: int) -> list[RawExample]:
    def parts(row: Row) -> tuple[str, list[str], int, str]:
        options = list(row["choice"])
        if row["answer"] not in options:
            raise ValueError(f"dream row {row.get('id', '?')!r}: its answer is not an option")
        dialogue = "\n".join(row["dialogue"])
        prompt = f"Dialogue:\n{dialogue}\nQuestion: {row['question']}\nAnswer: "
        return prompt, options, options.index(row["answer"]), str(row["dialogue_id"])

    return _choice_task("dream", rows, seed, parts)


def convert_hellaswag(rows: Iterable[Row], seed: int) -> list[RawExample]:
    def parts(row: Row) -> tuple[str, list[str], int, str]:
        options = list(row["endings"])
        gold = gold_index("hellaswag", row, row["label"], len(options))
        return f"{row['ctx']} ", options, gold, str(row["ctx"])

    return _choice_task("hellaswag", rows, seed, parts)


def _lettered(task: str, row: Row, choices: dict, key: str) -> tuple[list[str], int]:
    options = list(choices["text"])
    letters = list(choices["label"])
    if row[key] not in letters:
        raise ValueError(f"{task} row {row.get('id', '?')!r}: answer key {row[key]!r} unknown")
    return options, letters.index(row[key])


def convert_openbookqa(rows: Iterable[Row], seed: int) -> list[RawExample]:
    def parts(row: Row) -> tuple[str, list[str], int, str]:
        options, gold = _lettered("openbookqa", row, row["choices"], "answerKey")
        return f"Q: {row['question_stem']} A: ", options, gold, str(row["question_stem"])

    return _choice_task("openbookqa", rows, seed, parts)


def convert_quail(rows: Iterable[Row], seed: int) -> list[RawExample]:
    def parts(row: Row) -> tuple[str, list[str], int, str]:
        options = list(row["answers"])
        gold = gold_index("quail", row, row["correct_answer_id"], len(options))
        prompt = f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: "
        return prompt, options, gold, str(row["context_id"])

    return _choice_task("quail", rows, seed, parts)


def convert_piqa(rows: Iterable[Row], seed: int) -> list[RawExample]:
    def parts(row: Row) -> tuple[str, list[str], int, str]:
        options = [row["sol1"], row["sol2"]]
        gold = gold_index("piqa", row, row["label"], 2)
        return f"Goal: {row['goal']}\nSolution: ", options, gold, str(row["goal"])

    return _choice_task("piqa", rows, seed, parts)


def convert_quartz(rows: Iterable[Row], seed: int) -> list[RawExample]:
    def parts(row: Row) -> tuple[str, list[str], int, str]:
        options, gold = _lettered("quartz", row, row["choices"], "answerKey")
        prompt = f"{row['para']}\nQuestion: {row['question']}\nAnswer: "
        return prompt, options, gold, str(row["para"])

    return _choice_task("quartz", rows, seed, parts)


def convert_social_iqa(rows: Iterable[Row], seed: int) -> list[RawExample]:
    def parts(row: Row) -> tuple[str, list[str], int, str]:
        options = [row["answerA"], row["answerB"], row["answerC"]]
        # the hub's label is the 1-based option number as a string ("1", "2", "3")
        label = str(row["label"]).strip()
        gold = gold_index("social_iqa", row, int(label) - 1 if label.isdigit() else label, 3)
        prompt = f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: "
        return prompt, options, gold, str(row["context"])

    return _choice_task("social_iqa", rows, seed, parts)

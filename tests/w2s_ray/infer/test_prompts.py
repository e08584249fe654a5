"""Prompt building and tokenization for zero/few-shot scoring: what both backends see."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from w2s_ray.datasets import DATASETS, Example
from w2s_ray.infer.prompts import (
    GENERIC,
    SENTIMENT,
    Demonstration,
    build_prompt,
    draw_demonstrations,
    encode_for_scoring,
    format_for,
)

PROMPTED = [name for name, card in DATASETS.items() if not card.generative]


def _pool(n_pos: int, n_neg: int) -> tuple[list[Example], dict[str, int]]:
    pool = [Example(f"p{i}", f"good {i}", 1, f"p{i}") for i in range(n_pos)]
    pool += [Example(f"n{i}", f"bad {i}", 0, f"n{i}") for i in range(n_neg)]
    return pool, {ex.id: ex.label for ex in pool}


def test_demonstrations_are_balanced_seeded_and_use_the_labels_given():
    pool, labels = _pool(30, 30)
    demos = draw_demonstrations(pool, labels, 8, seed=1)
    assert len(demos) == 8 and sum(d.label for d in demos) == 4
    assert demos == draw_demonstrations(pool, labels, 8, seed=1)
    assert demos != draw_demonstrations(pool, labels, 8, seed=2)
    flipped = {k: 1 - v for k, v in labels.items()}  # a weak model that is always wrong
    shown = draw_demonstrations(pool, flipped, 8, seed=1)
    assert all(d.label == 1 - int(d.text.startswith("good")) for d in shown)


def test_a_short_class_is_made_up_from_the_other_and_k_zero_is_empty():
    pool, labels = _pool(2, 30)
    demos = draw_demonstrations(pool, labels, 8, seed=0)
    assert len(demos) == 8 and sum(d.label for d in demos) == 2
    assert draw_demonstrations(pool, labels, 0, seed=0) == []


def test_prompt_layout_ends_with_the_open_question():
    prompt = build_prompt(SENTIMENT, [Demonstration("great fun", 1)], "dull plot")
    assert prompt == (
        "Is the sentiment of each text positive or negative?\n\n"
        "great fun\nSentiment: positive\n\n"
        "dull plot\nSentiment:"
    )


def test_demonstrations_that_do_not_fit_are_dropped_and_long_texts_keep_their_end(
    tiny_decoders,
):
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoders["tiny-gpt2"])
    demos = [Demonstration("the film was good and fun " * 3, i % 2) for i in range(8)]
    texts = ["a dull plot", "the story was bad " * 40]
    short = encode_for_scoring(tokenizer, SENTIMENT, demos, texts, max_tokens=200)
    longest_answer = max(len(c) for c in short.choices)
    assert all(len(p) <= 200 - longest_answer for p in short.prompts)
    assert 0 < short.demos_used[0] < 8 and short.demos_used[1] == 0
    question = tokenizer("\nSentiment:", add_special_tokens=False)["input_ids"]
    assert short.prompts[1][-len(question) :] == question
    roomy = encode_for_scoring(tokenizer, SENTIMENT, demos, texts[:1], max_tokens=4096)
    assert roomy.demos_used == [8]
    assert tokenizer.decode(roomy.prompts[0]) == build_prompt(SENTIMENT, demos, texts[0])


@pytest.mark.parametrize("name", PROMPTED)
def test_every_registered_task_asks_its_own_question(name):
    fmt = format_for(name)
    assert fmt is not GENERIC and fmt != GENERIC, f"{name} falls back to the generic prompt"
    assert fmt == DATASETS.get(name).prompt  # read from the task's card, not a side table


@pytest.mark.parametrize("name", PROMPTED)
def test_each_prompt_has_a_question_and_two_distinct_one_word_answers(name):
    fmt = format_for(name)
    assert fmt.instruction.strip() and fmt.answer_prefix.strip()
    no, yes = fmt.choices
    assert no.strip() and yes.strip() and no != yes
    # " Yes", " negative": a leading space and one word, so that a BPE tokenizer of the GPT-2
    # or Llama kind reads each answer as one whole-word token after "Prefix:".
    assert all(c.startswith(" ") and len(c.split()) == 1 for c in fmt.choices)


def test_only_a_local_dataset_without_a_prompt_gets_the_generic_one():
    assert format_for("my_local_reviews") is GENERIC
    assert format_for("sst2").choices == (" negative", " positive")
    assert "correct" in format_for("quail").instruction  # multiple choice made binary

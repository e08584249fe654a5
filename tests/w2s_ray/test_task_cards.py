"""What each registered task's card says before anything is loaded: how many tokens its inputs
need (the default `train.max_length`), checked against realistic long rows."""

from __future__ import annotations

import dataclasses

import pytest
from hub_rows import LONG_BOOLQ_ROW, LONG_HH_ROW, LONG_MULTIRC_ROW, LONG_QUAIL_ROW, LONG_ROWS

from w2s_ray.datasets import DATASETS, DEFAULT_MAX_LENGTH, max_length_for
from w2s_ray.hub_tasks import HUB_TASKS
from w2s_ray.hub_tasks.common import MAX_CONTEXT

TOKENS_PER_WORD = 1.3  # GPT-2 BPE on English prose, roughly


def _tokens(text: str) -> int:
    return round(TOKENS_PER_WORD * len(text.split()))


def test_every_card_holds_a_length_within_the_reference_context():
    for name, card in DATASETS.items():
        assert 0 < card.max_length <= MAX_CONTEXT, name
        assert max_length_for(name) == card.max_length
    assert {n: c.max_length for n, c in DATASETS.items() if n in HUB_TASKS} == {
        n: t.max_length for n, t in HUB_TASKS.items()
    }
    assert max_length_for("my_local_reviews") == DEFAULT_MAX_LENGTH == 128


def test_a_hub_task_beyond_the_reference_context_is_refused():
    with pytest.raises(ValueError, match="max_length"):
        dataclasses.replace(HUB_TASKS["boolq"], max_length=2 * MAX_CONTEXT)


@pytest.mark.parametrize("name", ["boolq", "quail", "multirc"])
def test_a_long_passage_row_fits_its_task_length_whole(name: str):
    (example,) = HUB_TASKS[name].convert([LONG_ROWS[name]], 0)
    assert _tokens(example["text"]) > DEFAULT_MAX_LENGTH  # the old default cut it
    assert _tokens(example["text"]) <= max_length_for(name)


def test_a_long_dialogue_gets_the_whole_reference_context():
    assert max_length_for("anthropic_hh") == MAX_CONTEXT
    # Its shared turns alone outrun the context: only keeping the end tells the pair apart.
    shared = LONG_HH_ROW["chosen"][: LONG_HH_ROW["chosen"].rindex("\n\nAssistant:")]
    assert LONG_HH_ROW["rejected"].startswith(shared)
    assert _tokens(shared) > MAX_CONTEXT


def test_long_rows_convert_with_the_question_and_answer_last():
    (boolq,) = HUB_TASKS["boolq"].convert([LONG_BOOLQ_ROW], 0)
    assert boolq["text"].endswith(f"\nQuestion: {LONG_BOOLQ_ROW['question']}")
    assert boolq["label"] == 1
    for seed in range(8):
        (quail,) = HUB_TASKS["quail"].convert([LONG_QUAIL_ROW], seed)
        shown = quail["text"].rsplit("\nAnswer: ", 1)[1]
        assert quail["text"].startswith(f"Context: {LONG_QUAIL_ROW['context']}\n")
        assert (shown == LONG_QUAIL_ROW["answers"][0]) == bool(quail["label"])
    (multirc,) = HUB_TASKS["multirc"].convert([LONG_MULTIRC_ROW], 0)
    assert multirc["text"].endswith(
        f"\nQuestion: {LONG_MULTIRC_ROW['question']}\nAnswer: {LONG_MULTIRC_ROW['answer']}"
    )

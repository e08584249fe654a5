"""Related rows share a group in both splits, so a pool can drop whatever the test set holds:
hh-rlhf dialogues grown from one opening request, SST-2 phrases and their sentences."""

from __future__ import annotations

import random
from typing import Any

import datasets
import pytest

from w2s_ray.datasets import DATASETS
from w2s_ray.hub_tasks import HUB_TASKS, RawExample
from w2s_ray.hub_tasks.phrases import MIN_SHARED_WORDS, group_phrases

# --- anthropic_hh: the opening request ----------------------------------------------------

_OPENING = "\n\nHuman: What should I pack for a week of hiking?\n\nAssistant:"


def _hh(dialogue: str, last: str, other: str) -> dict[str, str]:
    return {"chosen": dialogue + last, "rejected": dialogue + other}


def _hh_groups(rows: list[dict[str, str]]) -> list[str]:
    return [ex["group"] for ex in HUB_TASKS["anthropic_hh"].convert(rows, 0)]


def test_hh_dialogues_from_one_opening_request_share_a_group_in_both_splits():
    follow_up = _OPENING + " Layers and a rain jacket.\n\nHuman: And food?\n\nAssistant:"
    train = [
        _hh(_OPENING, " Layers, a rain jacket and good boots.", " Nothing."),
        _hh(follow_up, " Dried fruit, nuts and oats.", " Just candy."),
    ]
    # The hub repeats requests with stray whitespace; a test row from the same request.
    test = [_hh(_OPENING.replace("a week of", "a week  of\n"), " Boots and socks.", " Sandals.")]
    groups = _hh_groups(train) + _hh_groups(test)
    assert len(set(groups)) == 1
    other = _hh("\n\nHuman: What should I pack for a day at the beach?\n\nAssistant:", " A", " B")
    assert _hh_groups([other]) != groups[:1]


def test_hh_opening_request_ends_at_the_first_assistant_turn():
    one = _hh(_OPENING, " Boots.", " Nothing.")
    # Same first words, then a different request: not the same opening.
    longer = _hh(_OPENING.replace("hiking?", "hiking in snow?"), " Boots.", " Nothing.")
    assert _hh_groups([one]) != _hh_groups([longer])


# --- sst2: phrases with the sentences they were cut from ----------------------------------


def _sst2(text: str, label: int, idx: int = 0) -> dict[str, Any]:
    return {"sentence": text, "label": label, "idx": idx}  # GLUE SST-2's hub schema


def _raw(*texts: str) -> list[RawExample]:
    return [RawExample(text=t, label=i % 2, group=f"own:{t}") for i, t in enumerate(texts)]


def _group_by_text(train: list[RawExample], test: list[RawExample]) -> dict[str, str]:
    new_train, new_test = group_phrases("sst2", train, test)
    assert [ex["text"] for ex in new_train] == [ex["text"] for ex in train]  # order kept
    assert [ex["label"] for ex in new_train + new_test] == [ex["label"] for ex in train + test]
    return {ex["text"]: ex["group"] for ex in new_train + new_test}


TRAIN = _raw(
    "a gorgeous , witty , seductive movie . ",
    "witty , seductive movie",  # only in the first sentence
    "seductive",  # one word, only in the first sentence
    "the plot is dull and the movie drags . ",
    "the movie drags",  # in a train sentence and a test sentence
    "movie",  # a common word: in every sentence
    "the movie",  # two words, in several sentences
    "dull",  # in a train sentence and a test sentence, one word
)
TEST = _raw("the movie drags on and on , and it is dull . ", "a lovely movie .")


def test_a_phrase_of_one_sentence_joins_that_sentence_even_one_word_long():
    groups = _group_by_text(TRAIN, [])
    first = groups["a gorgeous , witty , seductive movie . "]
    assert groups["witty , seductive movie"] == groups["seductive"] == first
    assert groups["the plot is dull and the movie drags . "] != first


def test_a_train_phrase_inside_a_test_sentence_takes_the_test_sentence_group():
    groups = _group_by_text(TRAIN, TEST)
    # "the movie drags" is in a train sentence too: the test sentence wins, so a pool that
    # drops the test set's groups drops the phrase.
    assert groups["the movie drags"] == groups["the movie drags on and on , and it is dull . "]
    train_only = _group_by_text(TRAIN, [])
    assert train_only["the movie drags"] == train_only["the plot is dull and the movie drags . "]


def test_short_phrases_found_in_several_sentences_keep_their_own_group():
    assert MIN_SHARED_WORDS == 3  # the rule the cases below are written for
    groups = _group_by_text(TRAIN, TEST)
    sentences = {groups[ex["text"]] for ex in TRAIN[:1] + TRAIN[3:4] + TEST}
    assert len(sentences) == 4
    commons = ("movie", "the movie", "dull")
    assert not {groups[c] for c in commons} & sentences
    assert len({groups[c] for c in commons}) == len(commons)  # each a group of its own


def test_a_sentence_inside_a_longer_one_in_the_other_split_joins_it():
    groups = _group_by_text(_raw("it is dull . ", "dull"), _raw("all in all , it is dull . "))
    assert groups["it is dull . "] == groups["all in all , it is dull . "]
    assert groups["dull"] == groups["all in all , it is dull . "]  # in one root only


def test_groups_do_not_depend_on_row_order_or_case():
    expected = _group_by_text(TRAIN, TEST)
    for seed in range(5):
        train, test = TRAIN[:], TEST[:]
        random.Random(seed).shuffle(train)
        random.Random(seed).shuffle(test)
        assert _group_by_text(train, test) == expected
    shouted = _group_by_text([*TRAIN, *_raw("WITTY , SEDUCTIVE")], TEST)
    assert shouted["WITTY , SEDUCTIVE"] == expected["a gorgeous , witty , seductive movie . "]


def test_the_sst2_loader_groups_train_and_test_together(monkeypatch: pytest.MonkeyPatch):
    # Balanced splits, so the task's class balancing keeps every row.
    splits = {
        "train": [
            _sst2("a lovely , moving film . ", 1, 0),
            _sst2("lovely , moving", 1, 1),
            _sst2("the jokes fall flat", 0, 2),  # inside the test sentence
            _sst2("a dull , plodding mess . ", 0, 3),
        ],
        "validation": [
            _sst2("sadly , the jokes fall flat and the cast looks bored . ", 0, 0),
            _sst2("a warm and funny story . ", 1, 1),
        ],
    }

    def from_hub(path: str, config: str, *, split: str, **kwargs: Any) -> list[dict[str, Any]]:
        assert (path, config) == ("nyu-mll/glue", "sst2")
        return splits[split]

    monkeypatch.setattr(datasets, "load_dataset", from_hub)
    data = DATASETS.get("sst2").load()
    assert data.test is not None
    group = {ex.text: ex.group for ex in data.train + data.test}
    assert group["the jokes fall flat"] == group[splits["validation"][0]["sentence"].strip()]
    assert group["lovely , moving"] == group["a lovely , moving film ."]
    pool_groups = {ex.group for ex in data.train} - {ex.group for ex in data.test}
    assert len(pool_groups) == 2  # the phrase of the test sentence is no pool group of its own

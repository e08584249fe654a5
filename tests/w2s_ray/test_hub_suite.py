"""The rest of the paper's NLP suite: converters on rows in each dataset's hub schema."""

from __future__ import annotations

from collections import Counter
from typing import Any

import datasets
import pytest

from w2s_ray.hub_tasks import HUB_TASKS, RawExample, load_hub_task
from w2s_ray.hub_tasks.common import balance_classes

# Burns et al. 2023, the 22 NLP classification tasks
PAPER_SUITE = {
    "boolq", "cosmos_qa", "dream", "ethics_justice", "ethics_deontology", "ethics_virtue",
    "ethics_utilitarianism", "anli_r2", "cola", "sst2", "hellaswag", "mc_taco", "openbookqa",
    "paws", "quail", "piqa", "quartz", "sciq", "social_iqa", "multirc", "wic",
    "twitter_sentiment",
}  # fmt: skip

# Rows as the hub serves them (column names and value types from each dataset's card).
CHOICE_ROWS: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    # name: (rows, the gold answer text of each row)
    "dream": (
        [
            {"id": 0, "dialogue_id": "5-510", "dialogue": ["M: Is it raining?", "W: No, sunny."],
             "question": "How is the weather?", "choice": ["Rainy.", "Sunny.", "Snowy."],
             "answer": "Sunny."},
            {"id": 1, "dialogue_id": "5-510", "dialogue": ["M: Is it raining?", "W: No, sunny."],
             "question": "Who asks?", "choice": ["The man.", "The woman.", "Nobody."],
             "answer": "The man."},
        ],
        ["Sunny.", "The man."],
    ),
    "hellaswag": (
        [
            {"ind": 4, "activity_label": "Baking", "ctx_a": "A man mixes flour.", "ctx_b": "he",
             "ctx": "A man mixes flour. he", "endings": ["kneads the dough.", "flies away.",
             "sings opera.", "paints a wall."], "source_id": "x", "split": "train",
             "split_type": "indomain", "label": "0"},
            {"ind": 5, "activity_label": "Rowing", "ctx_a": "Two people row.", "ctx_b": "they",
             "ctx": "Two people row. they", "endings": ["eat soup.", "reach the shore.",
             "type emails.", "melt."], "source_id": "y", "split": "train",
             "split_type": "indomain", "label": "1"},
        ],
        ["kneads the dough.", "reach the shore."],
    ),
    "openbookqa": (
        [
            {"id": "8-376", "question_stem": "Frilled sharks live far beneath the surface, so "
             "they are known as", "choices": {"text": ["Deep sea animals", "fish",
             "Long Sea Fish", "Far Sea Animals"], "label": ["A", "B", "C", "D"]},
             "answerKey": "A"},
            {"id": "9-1", "question_stem": "Plants need", "choices": {"text": ["rocks", "light",
             "plastic", "noise"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"},
        ],
        ["Deep sea animals", "light"],
    ),
    "quail": (
        [
            {"id": "f001_0", "context_id": "f001", "question_id": "0", "domain": "fiction",
             "metadata": {"author": "a", "title": "t", "url": "u"}, "context": "Ann lost a key.",
             "question": "What did Ann lose?", "question_type": "Entity_properties",
             "answers": ["a key", "a dog", "a hat", "not enough information"],
             "correct_answer_id": 0},
            {"id": "f001_1", "context_id": "f001", "question_id": "1", "domain": "fiction",
             "metadata": {"author": "a", "title": "t", "url": "u"}, "context": "Ann lost a key.",
             "question": "Who lost something?", "question_type": "Character_identity",
             "answers": ["Bob", "Ann", "Carl", "not enough information"],
             "correct_answer_id": 1},
        ],
        ["a key", "Ann"],
    ),
    "piqa": (
        [
            {"goal": "Dry wet shoes.", "sol1": "Stuff them with newspaper.",
             "sol2": "Fill them with water.", "label": 0},
            {"goal": "Cool soup fast.", "sol1": "Heat it.", "sol2": "Stir it in an ice bath.",
             "label": 1},
        ],
        ["Stuff them with newspaper.", "Stir it in an ice bath."],
    ),
    "quartz": (
        [
            {"id": "q1", "question": "Electrons further from a nucleus have _____ energy.",
             "choices": {"text": ["higher", "lower"], "label": ["A", "B"]}, "answerKey": "A",
             "para": "Electrons far from the nucleus have more energy.", "para_id": "p1",
             "para_anno": {}, "question_anno": {}},
            {"id": "q2", "question": "Colder air holds _____ water.",
             "choices": {"text": ["more", "less"], "label": ["A", "B"]}, "answerKey": "B",
             "para": "Warm air holds more water vapour.", "para_id": "p2", "para_anno": {},
             "question_anno": {}},
        ],
        ["higher", "less"],
    ),
    "social_iqa": (
        [
            {"context": "Sydney walked past a homeless woman asking for change.",
             "question": "How would you describe Sydney?", "answerA": "sympathetic",
             "answerB": "like a person who was unable to help", "answerC": "incredulous",
             "label": "1"},
            {"context": "Jan baked bread for the team.", "question": "What will others feel?",
             "answerA": "angry", "answerB": "bored", "answerC": "grateful", "label": "3\n"},
        ],
        ["sympathetic", "grateful"],
    ),
}  # fmt: skip

LABELED_ROWS: dict[str, tuple[list[dict[str, Any]], list[int]]] = {
    "sst2": ([{"sentence": "a gorgeous film", "label": 1, "idx": 0},
              {"sentence": "dull and long", "label": 0, "idx": 1}], [1, 0]),
    "cola": ([{"sentence": "Our friends won't buy this analysis.", "label": 1, "idx": 0},
              {"sentence": "Bill laughed Mary.", "label": 0, "idx": 1}], [1, 0]),
    "paws": ([{"id": 1, "sentence1": "Katz was born in Sweden in 1947.",
               "sentence2": "Katz was born in 1947 in Sweden.", "label": 1},
              {"id": 2, "sentence1": "A is north of B.", "sentence2": "B is north of A.",
               "label": 0}], [1, 0]),
    "wic": ([{"word": "bank", "sentence1": "He sat on the bank.", "sentence2": "The bank "
              "closed.", "start1": 14, "start2": 4, "end1": 18, "end2": 8, "idx": 0,
              "label": 0}], [0]),
    "multirc": ([{"paragraph": "Tom has two cats.", "question": "How many cats?",
                  "answer": "two", "idx": {"paragraph": 0, "question": 0, "answer": 0},
                  "label": 1},
                 {"paragraph": "Tom has two cats.", "question": "How many cats?",
                  "answer": "five", "idx": {"paragraph": 0, "question": 0, "answer": 1},
                  "label": 0}], [1, 0]),
    "mc_taco": ([{"sentence": "He ate dinner.", "question": "How long did dinner take?",
                  "answer": "30 minutes", "label": 1, "category": "Event Duration"},
                 {"sentence": "He ate dinner.", "question": "How long did dinner take?",
                  "answer": "30 years", "label": 0, "category": "Event Duration"}], [1, 0]),
    "anli_r2": ([{"uid": "a", "premise": "A dog runs.", "hypothesis": "An animal moves.",
                  "label": 0, "reason": ""},
                 {"uid": "b", "premise": "A dog runs.", "hypothesis": "The dog sleeps.",
                  "label": 2, "reason": ""},
                 {"uid": "c", "premise": "A dog runs.", "hypothesis": "The dog is old.",
                  "label": 1, "reason": ""}], [1, 0, 0]),
    "twitter_sentiment": ([{"text": "love this!", "label": 1},
                           {"text": "worst day", "label": 0}], [1, 0]),
    "ethics_justice": ([{"label": 1, "scenario": "I deserve a raise because I worked hard."},
                        {"label": 0, "scenario": "I deserve a raise because I am tall."}],
                       [1, 0]),
    "ethics_deontology": ([{"label": 1, "scenario": "Can you walk the dog?",
                            "excuse": "No, my leg is broken."},
                           {"label": 0, "scenario": "Can you walk the dog?",
                            "excuse": "No, the dog is brown."}], [1, 0]),
    "ethics_virtue": ([{"label": 1, "scenario": "She gave her lunch away. [SEP] generous"},
                       {"label": 0, "scenario": "She gave her lunch away. [SEP] greedy"}],
                      [1, 0]),
}  # fmt: skip


def _convert(name: str, rows: list[dict[str, Any]], seed: int = 0) -> list[RawExample]:
    return HUB_TASKS[name].convert(rows, seed)


def test_the_paper_suite_is_registered_with_hub_paths_splits_and_licenses():
    assert set(HUB_TASKS) >= PAPER_SUITE
    for name in PAPER_SUITE:
        task = HUB_TASKS[name]
        assert "/" in task.hf_path and task.train_split != task.test_split, name
        assert task.description and task.license, name


@pytest.mark.parametrize("name", sorted(CHOICE_ROWS))
def test_choice_tasks_show_the_gold_answer_exactly_when_the_label_is_1(name: str):
    rows, golds = CHOICE_ROWS[name]
    seen = Counter()
    for seed in range(60):
        examples = _convert(name, rows, seed)
        assert len(examples) == len(rows)
        for example, gold in zip(examples, golds, strict=True):
            assert example["text"].endswith(gold) == bool(example["label"]), (name, example)
            seen[example["label"]] += 1
    assert seen[0] > 30 and seen[1] > 30  # a fair coin over 60 seeds × rows
    assert _convert(name, rows, 5) == _convert(name, rows, 5)


def test_questions_on_one_passage_share_a_group_and_others_do_not():
    dream = _convert("dream", CHOICE_ROWS["dream"][0])
    assert dream[0]["group"] == dream[1]["group"]
    quail = _convert("quail", CHOICE_ROWS["quail"][0])
    assert quail[0]["group"] == quail[1]["group"]
    piqa = _convert("piqa", CHOICE_ROWS["piqa"][0])
    assert piqa[0]["group"] != piqa[1]["group"]


@pytest.mark.parametrize("name", sorted(LABELED_ROWS))
def test_labeled_tasks_keep_the_hub_label_and_every_field_in_the_text(name: str):
    rows, labels = LABELED_ROWS[name]
    examples = _convert(name, rows)
    assert [e["label"] for e in examples] == labels
    for row, example in zip(rows, examples, strict=True):
        for column in ("sentence", "sentence1", "sentence2", "question", "answer", "premise",
                       "hypothesis", "excuse", "word", "text"):  # fmt: skip
            if column in row:
                assert str(row[column]) in example["text"], (name, column)


def test_virtue_splits_the_trait_off_and_groups_by_sentence():
    examples = _convert("ethics_virtue", LABELED_ROWS["ethics_virtue"][0])
    assert examples[0]["text"] == "She gave her lunch away.\nTrait: generous"
    assert examples[0]["group"] == examples[1]["group"]


def test_utilitarianism_orders_each_pair_by_a_coin_and_labels_the_more_pleasant_first():
    row = {"baseline": "I found a twenty.", "less_pleasant": "I found a dime."}
    labels = Counter()
    for seed in range(40):
        (example,) = _convert("ethics_utilitarianism", [row], seed)
        first = example["text"].split("\n")[0]
        assert (row["baseline"] in first) == bool(example["label"])
        labels[example["label"]] += 1
    assert labels[0] > 10 and labels[1] > 10


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("sst2", {"sentence": "hidden", "label": -1, "idx": 7}),
        ("hellaswag", {"ctx": "c", "endings": ["a", "b", "c", "d"], "label": "", "ind": 1}),
        ("piqa", {"goal": "g", "sol1": "a", "sol2": "b", "label": -1}),
        ("social_iqa", {"context": "c", "question": "q", "answerA": "a", "answerB": "b",
                        "answerC": "c", "label": ""}),
        ("quail", {"id": "x", "context_id": "c", "context": "c", "question": "q",
                   "answers": ["a", "b"], "correct_answer_id": None}),
    ],
)  # fmt: skip
def test_hidden_test_labels_are_an_error_that_names_the_labelled_split(name, row):
    with pytest.raises(ValueError, match="'validation' split"):
        _convert(name, [row])


def test_balancing_keeps_the_rarer_class_whole_and_the_order():
    examples = [RawExample(text=str(i), label=int(i % 4 == 0), group=str(i)) for i in range(40)]
    balanced = balance_classes(examples, 0)
    assert Counter(e["label"] for e in balanced) == {0: 10, 1: 10}
    assert [e for e in examples if e["label"] == 1] == [e for e in balanced if e["label"] == 1]
    assert balanced == sorted(balanced, key=lambda e: int(e["text"]))
    assert balance_classes(examples, 0) == balanced and balance_classes(examples, 1) != balanced


def test_loading_uses_the_parquet_branch_and_balances(monkeypatch: pytest.MonkeyPatch):
    calls = []

    def fake_load(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        calls.append((args, kwargs))
        rows = LABELED_ROWS["mc_taco"][0]
        return [rows[0]] * 3 + [rows[1]] * 9

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    examples = load_hub_task(HUB_TASKS["mc_taco"], "train")
    assert Counter(e["label"] for e in examples) == {1: 3, 0: 3}
    assert calls == [
        (("CogComp/mc_taco", None), {"split": "test", "revision": "refs/convert/parquet"})
    ]

"""Hub task converters on hand-written rows in each dataset's hub schema (no network here)."""

from __future__ import annotations

from typing import Any

import datasets
import pytest

from w2s_ray.hub_tasks import HUB_TASKS, HubTask, RawExample, load_hub_task

SEEDS = range(40)

# allenai/sciq: question, distractor3, distractor1, distractor2, correct_answer, support
SCIQ_ROWS: list[dict[str, Any]] = [
    {
        "question": "What gas do plants absorb from the air for photosynthesis?",
        "distractor3": "helium",
        "distractor1": "oxygen",
        "distractor2": "nitrogen",
        "correct_answer": "carbon dioxide",
        "support": "Plants take in carbon dioxide.",
    },
    {
        "question": "What is the SI unit of force?",
        "distractor3": "joule",
        "distractor1": "watt",
        "distractor2": "pascal",
        "correct_answer": "newton",
        "support": "",
    },
    {
        "question": "Which organelle makes most of a cell's ATP?",
        "distractor3": "ribosome",
        "distractor1": "nucleus",
        "distractor2": "vacuole",
        "correct_answer": "mitochondrion",
        "support": "Mitochondria are the powerhouse of the cell.",
    },
    {
        "question": "What is the charge of an electron?",
        "distractor3": "neutral",
        "distractor1": "positive",
        "distractor2": "it varies",
        "correct_answer": "negative",
        "support": "",
    },
]

# google/boolq: question, answer (bool), passage
BOOLQ_ROWS: list[dict[str, Any]] = [
    {
        "question": "is the pacific ocean the largest ocean",
        "answer": True,
        "passage": "Pacific Ocean -- The Pacific is the largest and deepest of the oceans.",
    },
    {
        "question": "is the pacific ocean shallower than the atlantic",
        "answer": False,
        "passage": "Pacific Ocean -- The Pacific is the largest and deepest of the oceans.",
    },
    {
        "question": "can penguins fly",
        "answer": False,
        "passage": "Penguin -- Penguins are flightless birds living in the Southern Hemisphere.",
    },
    {
        "question": "do penguins live in the southern hemisphere",
        "answer": True,
        "passage": "Penguin -- Penguins are flightless birds living in the Southern Hemisphere.",
    },
]

# fancyzhx/amazon_polarity: label (0 negative, 1 positive), title, content
AMAZON_ROWS: list[dict[str, Any]] = [
    {"label": 1, "title": "Great kettle", "content": "Boils fast and looks nice."},
    {"label": 0, "title": "Broke in a week", "content": "The handle snapped off."},
    {"label": 1, "title": "Five stars", "content": "Exactly as described."},
]

# allenai/cosmos_qa: id, context, question, answer0..answer3, label (gold index; -1 in test)
_BAND_CONTEXT = (
    "I saw both bands on Wednesday night and they blew me away . I could not "
    "help but smile the whole time ."
)
COSMOS_ROWS: list[dict[str, Any]] = [
    {
        "id": "c1",
        "context": _BAND_CONTEXT,
        "question": "In the future , will this person go to see other bands play ?",
        "answer0": "None of the above choices .",
        "answer1": "This person likes live music , so they will see other bands play .",
        "answer2": "This person only likes these two bands .",
        "answer3": "Other bands are not on tour .",
        "label": 1,
    },
    {
        "id": "c2",
        "context": _BAND_CONTEXT,
        "question": "How did the person feel at the show ?",
        "answer0": "Bored .",
        "answer1": "Happy .",
        "answer2": "Angry .",
        "answer3": "None of the above choices .",
        "label": 1,
    },
    {
        "id": "c3",
        "context": "My temp agency called and said I was no longer needed .",
        "question": "Why might the agency have let me go ?",
        "answer0": "The client changed its mind .",
        "answer1": "I quit first .",
        "answer2": "None of the above choices .",
        "answer3": "I asked for a raise .",
        "label": 2,
    },
    {
        "id": "c4",
        "context": "We missed the last bus , so we walked home in the rain .",
        "question": "What happened after they missed the bus ?",
        "answer0": "They took a taxi .",
        "answer1": "They stayed at a hotel .",
        "answer2": "They walked home .",
        "answer3": "None of the above choices .",
        "label": 2,
    },
]

# Anthropic/hh-rlhf: chosen, rejected (full dialogues ending in the two responses)
_SLEEP = "\n\nHuman: How can I fall asleep faster?\n\nAssistant:"
HH_ROWS: list[dict[str, Any]] = [
    {
        "chosen": _SLEEP + " Keep a regular schedule and avoid screens before bed.",
        "rejected": _SLEEP + " Just take a lot of pills.",
    },
    {
        "chosen": _SLEEP + " Try a cool, dark room and a wind-down routine.",
        "rejected": _SLEEP + " Try drinking coffee at night.",
    },
    {
        "chosen": "\n\nHuman: What's a good name for a cat?\n\nAssistant: How about Miso?",
        "rejected": "\n\nHuman: What's a good name for a cat?\n\nAssistant: How about Dog?",
    },
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke"
        "\n\nAssistant: Why did the chicken cross the road?",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke"
        "\n\nAssistant: No.",
    },
]

FIXTURES = {
    "sciq": SCIQ_ROWS,
    "boolq": BOOLQ_ROWS,
    "amazon_polarity": AMAZON_ROWS,
    "cosmos_qa": COSMOS_ROWS,
    "anthropic_hh": HH_ROWS,
}


def _convert(name: str, seed: int) -> list[RawExample]:
    return HUB_TASKS[name].convert(FIXTURES[name], seed)


def _labels_over_seeds(name: str, row: int) -> set[int]:
    return {_convert(name, seed)[row]["label"] for seed in SEEDS}


def test_registry_names_hub_paths_and_splits() -> None:
    expected = {
        "sciq": ("allenai/sciq", "train", "test"),
        "boolq": ("google/boolq", "train", "validation"),
        "amazon_polarity": ("fancyzhx/amazon_polarity", "train", "test"),
        "cosmos_qa": ("allenai/cosmos_qa", "train", "validation"),
        "anthropic_hh": ("Anthropic/hh-rlhf", "train", "test"),
    }
    got = {n: (t.hf_path, t.train_split, t.test_split) for n, t in HUB_TASKS.items()}
    assert {n: got[n] for n in expected} == expected  # the rest of the suite: test_hub_suite.py
    assert all(t.name == n and t.description and t.license for n, t in HUB_TASKS.items())


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_one_example_per_row_and_deterministic(name: str) -> None:
    first = _convert(name, 7)
    assert len(first) == len(FIXTURES[name])
    assert first == _convert(name, 7)
    assert all(ex["label"] in (0, 1) and ex["text"] and ex["group"] for ex in first)


# --- sciq -------------------------------------------------------------------------------


def test_sciq_seed0_matches_reference_draw_order() -> None:
    # Pinned from a separate replay of the reference formatter: per row one coin
    # (random() < 0.5 shows the correct answer), then on tails one choice among
    # distractor1..3, all from a single Random(0) walked over the rows.
    got = [(ex["text"], ex["label"]) for ex in _convert("sciq", 0)]
    assert got == [
        ("Q: What gas do plants absorb from the air for photosynthesis? A: nitrogen", 0),
        ("Q: What is the SI unit of force? A: newton", 1),
        ("Q: Which organelle makes most of a cell's ATP? A: vacuole", 0),
        ("Q: What is the charge of an electron? A: negative", 1),
    ]


def test_sciq_label_says_whether_the_shown_answer_is_correct() -> None:
    for seed in SEEDS:
        for row, ex in zip(SCIQ_ROWS, _convert("sciq", seed), strict=True):
            answer = ex["text"].removeprefix(f"Q: {row['question']} A: ")
            distractors = {row["distractor1"], row["distractor2"], row["distractor3"]}
            assert answer == row["correct_answer"] if ex["label"] else answer in distractors
    assert _labels_over_seeds("sciq", 0) == {0, 1}


def test_sciq_seed_changes_choice_and_groups_follow_the_question() -> None:
    assert len({tuple(ex["text"] for ex in _convert("sciq", s)) for s in SEEDS}) > 1
    groups = [ex["group"] for ex in _convert("sciq", 0)]
    assert len(set(groups)) == len(groups)
    # Whatever answer a seed shows, the question keeps its group.
    assert {ex["group"] for s in SEEDS for ex in _convert("sciq", s)[:1]} == {groups[0]}
    reworded = [{**SCIQ_ROWS[0], "question": "Which gas do leaves take in?"}]
    assert HUB_TASKS["sciq"].convert(reworded, 0)[0]["group"] != groups[0]


# --- boolq ------------------------------------------------------------------------------


def test_boolq_text_labels_and_passage_groups() -> None:
    out = _convert("boolq", 0)
    assert out[0]["text"] == (
        "Passage: Pacific Ocean -- The Pacific is the largest and deepest "
        "of the oceans.\nQuestion: is the pacific ocean the largest ocean"
    )
    assert [ex["label"] for ex in out] == [1, 0, 0, 1]
    assert out[0]["group"] == out[1]["group"] != out[2]["group"] == out[3]["group"]
    assert _convert("boolq", 1) == out  # nothing is sampled


# --- amazon_polarity --------------------------------------------------------------------


def test_amazon_polarity_text_and_labels() -> None:
    out = _convert("amazon_polarity", 0)
    assert out[1]["text"] == "Broke in a week The handle snapped off."
    assert [ex["label"] for ex in out] == [1, 0, 1]
    assert len({ex["group"] for ex in out}) == 3
    assert _convert("amazon_polarity", 5) == out


# --- cosmos_qa --------------------------------------------------------------------------


def test_cosmos_qa_text_format() -> None:
    ex = _convert("cosmos_qa", 0)[3]
    row = COSMOS_ROWS[3]
    prefix = f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: "
    assert ex["text"].startswith(prefix)
    shown = ex["text"].removeprefix(prefix)
    assert (shown == "They walked home .") == bool(ex["label"])
    assert shown in {row[f"answer{i}"] for i in range(4)}


def test_cosmos_qa_label_is_one_exactly_when_the_gold_answer_is_shown() -> None:
    for seed in SEEDS:
        for row, ex in zip(COSMOS_ROWS, _convert("cosmos_qa", seed), strict=True):
            gold = row[f"answer{row['label']}"]
            assert ex["text"].endswith(f"\nAnswer: {gold}") == bool(ex["label"])
    assert _labels_over_seeds("cosmos_qa", 1) == {0, 1}


def test_cosmos_qa_gold_none_of_the_above_is_always_a_negative() -> None:
    assert _labels_over_seeds("cosmos_qa", 2) == {0}
    shown = {_convert("cosmos_qa", s)[2]["text"].rsplit("\nAnswer: ", 1)[1] for s in SEEDS}
    assert shown <= {"The client changed its mind .", "I quit first .", "I asked for a raise ."}
    assert len(shown) > 1


def test_cosmos_qa_seed0_matches_reference_draw_order() -> None:
    # Pinned: the forced-negative row (index 2) draws no coin, only the wrong-answer choice.
    got = [(ex["text"].rsplit("\nAnswer: ", 1)[1], ex["label"]) for ex in _convert("cosmos_qa", 0)]
    assert got == [
        ("This person only likes these two bands .", 0),
        ("Happy .", 1),
        ("I asked for a raise .", 0),
        ("They walked home .", 1),
    ]


def test_cosmos_qa_groups_by_narrative_and_rejects_unlabelled_rows() -> None:
    groups = [ex["group"] for ex in _convert("cosmos_qa", 0)]
    assert groups[0] == groups[1]
    assert len({groups[0], groups[2], groups[3]}) == 3
    with pytest.raises(ValueError, match="validation"):
        HUB_TASKS["cosmos_qa"].convert([{**COSMOS_ROWS[0], "label": -1}], 0)


# --- anthropic_hh -----------------------------------------------------------------------


def test_anthropic_hh_shows_chosen_for_label_one() -> None:
    for seed in SEEDS:
        for row, ex in zip(HH_ROWS, _convert("anthropic_hh", seed), strict=True):
            assert ex["text"] == (row["chosen"] if ex["label"] else row["rejected"])
    assert _labels_over_seeds("anthropic_hh", 0) == {0, 1}
    assert len({tuple(ex["text"] for ex in _convert("anthropic_hh", s)) for s in SEEDS}) > 1


def test_anthropic_hh_seed0_matches_reference_draw_order() -> None:
    # One coin per row from Random(0): 0.844, 0.758, 0.421, 0.259 -> rejected, rejected,
    # chosen, chosen.
    assert [ex["label"] for ex in _convert("anthropic_hh", 0)] == [0, 0, 1, 1]


def test_anthropic_hh_groups_by_the_shared_dialogue() -> None:
    groups = [ex["group"] for ex in _convert("anthropic_hh", 0)]
    # Rows 0 and 1 continue the same prompt; row 2's responses share "How about " yet its
    # group must not depend on that accident, only on the dialogue.
    assert groups[0] == groups[1]
    assert len({groups[0], groups[2], groups[3]}) == 3
    assert {ex["group"] for s in SEEDS for ex in _convert("anthropic_hh", s)[:2]} == {groups[0]}
    retold = {
        "chosen": "\n\nHuman: What's a good name for a cat?\n\nAssistant: Luna.",
        "rejected": "\n\nHuman: What's a good name for a cat?\n\nAssistant: How about X",
    }
    assert HUB_TASKS["anthropic_hh"].convert([retold], 0)[0]["group"] == groups[2]


# --- load_hub_task ----------------------------------------------------------------------


def test_load_hub_task_turns_an_unreachable_hub_into_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def offline(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Couldn't reach 'google/boolq' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError) as info:
        load_hub_task(HUB_TASKS["boolq"], "test")
    message = str(info.value)
    for needle in ("google/boolq", "validation", "unreachable", "HF_DATASETS_OFFLINE"):
        assert needle in message
    assert isinstance(info.value.__cause__, ConnectionError)


def test_load_hub_task_does_not_disguise_other_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("bad config name")

    monkeypatch.setattr(datasets, "load_dataset", broken)
    with pytest.raises(ValueError, match="bad config name"):
        load_hub_task(HUB_TASKS["sciq"], "train")


def test_load_hub_task_maps_split_roles_and_converts_with_seed_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def cached(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        calls.append((args, kwargs))
        return COSMOS_ROWS

    monkeypatch.setattr(datasets, "load_dataset", cached)
    task: HubTask = HUB_TASKS["cosmos_qa"]
    assert load_hub_task(task, "test") == task.convert(COSMOS_ROWS, 0)
    assert load_hub_task(task, "validation") == task.convert(COSMOS_ROWS, 0)
    assert calls == [(("allenai/cosmos_qa", None), {"split": "validation"})] * 2

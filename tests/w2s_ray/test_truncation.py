"""Long inputs keep the end that decides the label: the question and the candidate answer of a
QA task, the last reply of a dialogue. Checked on rows as long as the real ones."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hub_rows import LONG_BOOLQ_ROW, LONG_HH_ROW

from w2s_ray.hub_tasks.reference import convert_anthropic_hh, convert_boolq
from w2s_ray.infer.hf import tokenize
from w2s_ray.truncation import conflicting_positions, encode_keep_end, token_lengths

BOOLQ_ROW = LONG_BOOLQ_ROW  # a ~320-word passage, the question after it
HH_ROW = LONG_HH_ROW  # a dialogue of ~1,600 tokens; the replies differ only in the last turn


def _words(*texts: str) -> list[str]:
    return sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})


def _wordpiece(path: Path, *texts: str) -> Any:
    """A BERT tokenizer whose vocabulary holds every word of `texts`, so decoding is exact."""
    from transformers import AutoTokenizer, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_words(*texts)]
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def _bpe(path: Path, *texts: str, bos: bool) -> Any:
    """A byte-level BPE decoder tokenizer (GPT-2 style; Llama style adds a BOS token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(list(texts), trainer)
    if bos:
        bpe.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", 0)]
        )
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def test_an_encoder_sees_the_boolq_question_after_a_long_passage(tmp_path: Path):
    (example,) = convert_boolq([BOOLQ_ROW], 0)
    tokenizer = _wordpiece(tmp_path, example["text"])
    assert token_lengths(tokenizer, [example["text"]])[0] > 300  # as long as real passages
    (ids,) = tokenize(tokenizer, [example["text"]], 128)
    assert len(ids) == 128
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    shown = tokenizer.decode(ids, skip_special_tokens=True)
    assert shown.endswith("question : " + BOOLQ_ROW["question"])
    assert not shown.startswith("passage")  # the start of the passage is what gave way


@pytest.mark.parametrize("bos", [False, True], ids=["gpt2-style", "llama-style"])
def test_a_decoder_keeps_its_bos_and_the_end_of_the_text(tmp_path: Path, bos: bool):
    (example,) = convert_boolq([BOOLQ_ROW], 0)
    tokenizer = _bpe(tmp_path, example["text"], bos=bos)
    (ids,) = encode_keep_end(tokenizer, [example["text"]], 64)
    assert len(ids) == 64
    assert (ids[0] == tokenizer.bos_token_id) is bos
    assert tokenizer.decode(ids, skip_special_tokens=True).endswith(BOOLQ_ROW["question"])


def test_short_texts_are_left_whole(tmp_path: Path):
    tokenizer = _wordpiece(tmp_path, "a short text")
    assert encode_keep_end(tokenizer, ["a short text"], 128) == [
        tokenizer("a short text")["input_ids"]
    ]


def test_hh_chosen_and_rejected_stay_different_after_the_cut(tmp_path: Path):
    rows = convert_anthropic_hh([HH_ROW, HH_ROW], 3)
    texts = [HH_ROW["chosen"], HH_ROW["rejected"]]
    tokenizer = _bpe(tmp_path, *texts, bos=False)
    assert min(token_lengths(tokenizer, texts)) > 1024
    chosen, rejected = encode_keep_end(tokenizer, texts, 48)
    assert chosen != rejected
    # cutting from the right, as before, made the two replies one text with two labels
    right = tokenizer(texts, truncation=True, max_length=48)["input_ids"]
    assert right[0] == right[1]
    assert conflicting_positions(right, [1, 0]) == {0, 1}
    assert conflicting_positions([chosen, rejected], [1, 0]) == set()
    assert {r["label"] for r in rows} <= {0, 1}


def test_conflicts_are_identical_inputs_with_different_labels_only():
    ids = [[1, 2], [1, 2], [3], [3], [4]]
    assert conflicting_positions(ids, [0, 1, 1, 1, 0]) == {0, 1}


@pytest.mark.parametrize("name", ["quail", "multirc"])
def test_a_multiple_choice_input_cut_short_still_ends_with_question_and_answer(
    tmp_path: Path, name: str
):
    from hub_rows import LONG_ROWS

    from w2s_ray.hub_tasks import HUB_TASKS

    (example,) = HUB_TASKS[name].convert([LONG_ROWS[name]], 0)
    tokenizer = _wordpiece(tmp_path, example["text"])
    (ids,) = tokenize(tokenizer, [example["text"]], 128)  # what every training input goes through
    shown = tokenizer.decode(ids, skip_special_tokens=True)
    question_and_answer = example["text"][example["text"].rindex("Question:") :]
    assert len(ids) == 128 and token_lengths(tokenizer, [example["text"]])[0] > 300
    assert shown.endswith(tokenizer.decode(tokenizer(question_and_answer)["input_ids"][1:-1]))

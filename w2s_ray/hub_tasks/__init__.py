"""The paper's Hugging Face hub tasks as binary classification: the reference code's five and
the rest of its NLP suite, each converted by a pure function tested on rows in the hub schema.
"""

from __future__ import annotations

from typing import Any

from w2s_ray.hub_tasks.choice import (
    convert_dream,
    convert_hellaswag,
    convert_openbookqa,
    convert_piqa,
    convert_quail,
    convert_quartz,
    convert_social_iqa,
)
from w2s_ray.hub_tasks.common import (
    MAX_CONTEXT,
    HubTask,
    HubUnreachableError,
    RawExample,
    balance_classes,
)
from w2s_ray.hub_tasks.labeled import (
    convert_anli,
    convert_cola,
    convert_ethics_deontology,
    convert_ethics_justice,
    convert_ethics_utilitarianism,
    convert_ethics_virtue,
    convert_mc_taco,
    convert_multirc,
    convert_paws,
    convert_sst2,
    convert_twitter_sentiment,
    convert_wic,
)
from w2s_ray.hub_tasks.phrases import group_phrases
from w2s_ray.hub_tasks.reference import (
    convert_amazon_polarity,
    convert_anthropic_hh,
    convert_boolq,
    convert_cosmos_qa,
    convert_sciq,
)
from w2s_ray.infer.prompts import PromptFormat

__all__ = ["HUB_TASKS", "HubTask", "HubUnreachableError", "RawExample", "load_hub_task"]

PARQUET = "refs/convert/parquet"  # the hub's parquet copy of a script-only dataset
MC = "with its gold answer or a random wrong option (50/50), 1 = gold"

REFERENCE_TASKS = (
    HubTask(
        "sciq",
        "allenai/sciq",
        None,
        "train",
        "test",
        convert_sciq,
        "science exam question with the correct answer or a random distractor (50/50): "
        "'Q: {question} A: {answer}', 1 = correct",
        "CC-BY-NC-3.0",
        prompt=PromptFormat(
            "Each science exam question is shown with an answer. Is the answer correct?",
            "Correct:",
        ),
        # 'Q: .. A: ..' only (the support paragraph is not shown): a question of ~15 words and
        # an answer of a few, ~30 tokens; the longest questions stay well under 128.
        max_length=128,
    ),
    HubTask(
        "boolq",
        "google/boolq",
        None,
        "train",
        "validation",
        convert_boolq,
        "yes/no question on a Wikipedia passage: 'Passage: {passage}\\nQuestion: "
        "{question}', 1 = yes",
        "CC-BY-SA-3.0",
        prompt=PromptFormat(
            "Each passage is followed by a yes/no question about it. What is the answer?",
            "Answer:",
        ),
        # Passages average ~108 words (the BoolQ paper), ~140 tokens, with a tail to ~3x
        # that; plus the question (~9 words). 512 holds nearly all.
        max_length=512,
    ),
    HubTask(
        "amazon_polarity",
        "fancyzhx/amazon_polarity",
        None,
        "train",
        "test",
        convert_amazon_polarity,
        "Amazon review '{title} {content}', 1 = positive",
        "Apache-2.0",
        prompt=PromptFormat(
            "Is each Amazon product review positive or negative?",
            "Sentiment:",
            (" negative", " positive"),
        ),
        # Reviews average ~80 words and run to ~1,000 characters (~250 tokens) plus a title.
        max_length=320,
    ),
    HubTask(
        "cosmos_qa",
        "allenai/cosmos_qa",
        None,
        "train",
        "validation",
        convert_cosmos_qa,
        "'Context: {context}\\nQuestion: {question}\\nAnswer: {answer}' with the gold or a "
        "random wrong option (50/50; gold 'None of the above' always wrong), 1 = gold",
        "CC-BY-4.0",
        prompt=PromptFormat(
            "Each passage is followed by a question and an answer. Is the answer correct?",
            "Correct:",
        ),
        # Contexts average ~70 words, question and answer ~20 more: ~120 tokens; the longest
        # contexts reach about twice that.
        max_length=256,
    ),
    HubTask(
        "anthropic_hh",
        "Anthropic/hh-rlhf",
        None,
        "train",
        "test",
        convert_anthropic_hh,
        "a dialogue ending in the chosen or the rejected response (50/50), 1 = chosen",
        "MIT",
        prompt=PromptFormat(
            "Each dialogue ends with a reply from the assistant. Is it the reply people "
            "preferred, as the more helpful and harmless one?",
            "Preferred:",
        ),
        # Dialogues of several turns run past any small limit (hundreds of tokens typical,
        # thousands at the tail): the reference's whole context.
        max_length=MAX_CONTEXT,
    ),
)

SUITE_TASKS = (
    HubTask(
        "dream",
        "dataset-org/dream",
        None,
        "train",
        "test",
        convert_dream,
        f"'Dialogue:\\n{{turns}}\\nQuestion: {{question}}\\nAnswer: {{answer}}' {MC}",
        "see the hub card",
        revision=PARQUET,
        prompt=PromptFormat(
            "Each dialogue is followed by a question and an answer. Is the answer correct?",
            "Correct:",
        ),
        # Dialogues average ~85 words (plus a speaker tag per turn), question and answer ~15:
        # ~140 tokens, with a tail of long conversations to ~3x that.
        max_length=512,
    ),
    HubTask(
        "ethics_justice",
        "hendrycks/ethics",
        "justice",
        "train",
        "validation",
        convert_ethics_justice,
        "a claim of desert or fairness, 1 = reasonable; balanced",
        "MIT",
        revision=PARQUET,
        balance=True,
        prompt=PromptFormat(
            "Each text gives a reason for what someone deserves or for how they are treated. "
            "Is the reason fair?",
            "Fair:",
        ),
        # One or two sentences of ~15-40 words.
        max_length=96,
    ),
    HubTask(
        "ethics_deontology",
        "hendrycks/ethics",
        "deontology",
        "train",
        "validation",
        convert_ethics_deontology,
        "'Request: {scenario}\\nExcuse: {excuse}', 1 = reasonable excuse; balanced",
        "MIT",
        revision=PARQUET,
        balance=True,
        prompt=PromptFormat(
            "Each request or duty is followed by an excuse. Is the excuse reasonable?",
            "Reasonable:",
        ),
        # A request and an excuse of ~10-20 words each.
        max_length=96,
    ),
    HubTask(
        "ethics_virtue",
        "hendrycks/ethics",
        "virtue",
        "train",
        "validation",
        convert_ethics_virtue,
        "'{sentence}\\nTrait: {trait}', 1 = the character shows it; balanced",
        "MIT",
        revision=PARQUET,
        balance=True,
        prompt=PromptFormat(
            "Does the character in each sentence show the trait named after it?",
            "Shows the trait:",
        ),
        # A sentence or two of ~15-40 words and one trait word.
        max_length=96,
    ),
    HubTask(
        "ethics_utilitarianism",
        "hendrycks/ethics",
        "utilitarianism",
        "train",
        "validation",
        convert_ethics_utilitarianism,
        "'Scenario 1: ..\\nScenario 2: ..' in random order, 1 = the first is more pleasant",
        "MIT",
        revision=PARQUET,
        prompt=PromptFormat(
            "Each text shows two scenarios. Is Scenario 1 more pleasant than Scenario 2 for the "
            "person in them?",
            "Scenario 1 more pleasant:",
        ),
        # Two scenarios of ~15-30 words each.
        max_length=128,
    ),
    HubTask(
        "anli_r2",
        "facebook/anli",
        None,
        "train_r2",
        "test_r2",
        convert_anli,
        "'Premise: ..\\nHypothesis: ..' (ANLI round 2), 1 = entailment; balanced",
        "CC-BY-NC-4.0",
        balance=True,
        prompt=PromptFormat(
            "Does the hypothesis of each text follow from its premise?",
            "Follows:",
        ),
        # Premises are Wikipedia passages of a few sentences (~50-100 words), hypotheses ~10.
        max_length=256,
    ),
    HubTask(
        "cola",
        "nyu-mll/glue",
        "cola",
        "train",
        "validation",
        convert_cola,
        "a sentence, 1 = grammatically acceptable (GLUE CoLA); balanced",
        "see the hub card",
        balance=True,
        prompt=PromptFormat(
            "Is each sentence grammatically acceptable English?",
            "Acceptable:",
        ),
        # Single sentences of ~9 words on average, rarely over 40.
        max_length=64,
    ),
    HubTask(
        "sst2",
        "nyu-mll/glue",
        "sst2",
        "train",
        "validation",
        convert_sst2,
        "a movie-review sentence, 1 = positive (GLUE SST-2); balanced",
        "see the hub card",
        balance=True,
        prompt=PromptFormat(
            "Is the sentiment of each movie review sentence or phrase positive or negative?",
            "Sentiment:",
            (" negative", " positive"),
        ),
        # Sentences of at most ~55 words (phrases are shorter), ~20 on average.
        max_length=96,
        # Train holds each sentence's parse-tree phrases as rows: they join its group.
        regroup=lambda train, test: group_phrases("sst2", train, test),
    ),
    HubTask(
        "hellaswag",
        "Rowan/hellaswag",
        None,
        "train",
        "validation",
        convert_hellaswag,
        f"'{{context}} {{ending}}' {MC}",
        "MIT",
        revision=PARQUET,
        prompt=PromptFormat(
            "Each text is the start of a scene or a how-to, then an ending. Is it the ending "
            "that really follows?",
            "Right ending:",
        ),
        # ActivityNet and WikiHow contexts of ~40-100 words plus an ending of ~20-30.
        max_length=256,
    ),
    HubTask(
        "mc_taco",
        "CogComp/mc_taco",
        None,
        "test",
        "validation",
        convert_mc_taco,
        "'{sentence}\\nQuestion: ..\\nAnswer: ..', 1 = plausible (temporal); the hub has "
        "no train split, so its test split trains; balanced",
        "see the hub card",
        revision=PARQUET,
        balance=True,
        prompt=PromptFormat(
            "Each sentence is followed by a question about time and an answer. Is the answer "
            "plausible?",
            "Plausible:",
        ),
        # A sentence of ~20-30 words, a question of ~8 and a short answer.
        max_length=96,
    ),
    HubTask(
        "openbookqa",
        "allenai/openbookqa",
        "main",
        "train",
        "test",
        convert_openbookqa,
        f"'Q: {{question}} A: {{answer}}' {MC}",
        "Apache-2.0",
        prompt=PromptFormat(
            "Each elementary science question is shown with an answer. Is the answer correct?",
            "Correct:",
        ),
        # Question stems of ~11 words on average (a few of 50+) and short answers.
        max_length=96,
    ),
    HubTask(
        "paws",
        "google-research-datasets/paws",
        "labeled_final",
        "train",
        "test",
        convert_paws,
        "'Sentence 1: ..\\nSentence 2: ..', 1 = paraphrase; balanced",
        "see the hub card",
        balance=True,
        prompt=PromptFormat(
            "Do the two sentences of each text mean the same thing?",
            "Paraphrase:",
        ),
        # Two Wikipedia sentences of ~20-25 words each, a few of 60.
        max_length=192,
    ),
    HubTask(
        "quail",
        "textmachinelab/quail",
        None,
        "train",
        "validation",
        convert_quail,
        f"'Context: ..\\nQuestion: ..\\nAnswer: ..' {MC}",
        "CC-BY-NC-SA-4.0",
        prompt=PromptFormat(
            "Each passage is followed by a question and an answer. Is the answer correct?",
            "Correct:",
        ),
        # Passages of ~300-500 words (~400-650 tokens) plus a question and answer of ~30.
        max_length=768,
    ),
    HubTask(
        "piqa",
        "ybisk/piqa",
        None,
        "train",
        "validation",
        convert_piqa,
        f"'Goal: ..\\nSolution: ..' {MC}",
        "AFL-3.0",
        revision=PARQUET,
        prompt=PromptFormat(
            "Each goal is followed by a solution. Does the solution achieve the goal?",
            "Works:",
        ),
        # Goals of ~8 words and solutions of ~20 on average, some solutions over 100.
        max_length=192,
    ),
    HubTask(
        "quartz",
        "allenai/quartz",
        None,
        "train",
        "test",
        convert_quartz,
        f"'{{paragraph}}\\nQuestion: ..\\nAnswer: ..' {MC}",
        "CC-BY-4.0",
        prompt=PromptFormat(
            "Each text states a fact, then a question and an answer. Is the answer correct?",
            "Correct:",
        ),
        # A one- or two-sentence paragraph, a question of ~15 words and a one-word answer.
        max_length=128,
    ),
    HubTask(
        "social_iqa",
        "allenai/social_i_qa",
        None,
        "train",
        "validation",
        convert_social_iqa,
        f"'Context: ..\\nQuestion: ..\\nAnswer: ..' {MC}",
        "see the hub card",
        revision=PARQUET,
        prompt=PromptFormat(
            "Each situation is followed by a question about the people in it and an answer. "
            "Is the answer correct?",
            "Correct:",
        ),
        # A context of ~15-20 words, a question of ~7 and a short answer.
        max_length=96,
    ),
    HubTask(
        "multirc",
        "aps/super_glue",
        "multirc",
        "train",
        "validation",
        convert_multirc,
        "'Paragraph: ..\\nQuestion: ..\\nAnswer: ..', 1 = a correct answer (SuperGLUE "
        "MultiRC); balanced",
        "see the hub card",
        balance=True,
        prompt=PromptFormat(
            "Each paragraph is followed by a question and a candidate answer. Is the answer "
            "correct?",
            "Correct:",
        ),
        # Paragraphs average ~260 words (~340 tokens), the longest about twice that.
        max_length=768,
    ),
    HubTask(
        "wic",
        "aps/super_glue",
        "wic",
        "train",
        "validation",
        convert_wic,
        "'Word: ..\\nSentence 1: ..\\nSentence 2: ..', 1 = same sense (SuperGLUE WiC); balanced",
        "see the hub card",
        balance=True,
        prompt=PromptFormat(
            "Is the word shown used with the same meaning in both sentences?",
            "Same meaning:",
        ),
        # A word and two short sentences of ~10-20 words.
        max_length=96,
    ),
    HubTask(
        "twitter_sentiment",
        "EleutherAI/twitter-sentiment",
        None,
        "train",
        "test",
        convert_twitter_sentiment,
        "a tweet, 1 = positive; balanced",
        "see the hub card",
        balance=True,
        prompt=PromptFormat(
            "Is the sentiment of each tweet positive or negative?",
            "Sentiment:",
            (" negative", " positive"),
        ),
        # Tweets of at most 280 characters; emoji and odd spellings cost extra tokens.
        max_length=128,
    ),
)

HUB_TASKS: dict[str, HubTask] = {task.name: task for task in (*REFERENCE_TASKS, *SUITE_TASKS)}


def _hub_split(task: HubTask, split: str) -> str:
    # "train"/"test" name the task's roles; any other name is taken as a hub split as is.
    return {"train": task.train_split, "test": task.test_split}.get(split, split)


def load_hub_task(
    task: HubTask, split: str, *, trust_remote_code: bool = False, revision: str | None = None
) -> list[RawExample]:
    """Load one split of `task` from the hub (or the HF cache) and convert it with seed 0;
    `revision` (the study's pinned or resolved commit) overrides the task's own branch."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetNotFoundError

    hub_split = _hub_split(task, split)
    # datasets >= 4 no longer runs loading scripts and logs an error when asked to, so the
    # flag is only passed when a caller explicitly wants it.
    extra: dict[str, Any] = {"trust_remote_code": True} if trust_remote_code else {}
    if revision or task.revision:
        extra["revision"] = revision or task.revision
    try:
        rows = load_dataset(task.hf_path, task.hf_config, split=hub_split, **extra)
    except (OSError, DatasetNotFoundError) as exc:
        # Network, offline-mode and cache misses all surface as OSError subclasses here
        # (requests, httpx-backed hub errors, FileNotFoundError); other errors are bugs.
        raise HubUnreachableError(
            f"dataset '{task.name}' ({task.hf_path}, split '{hub_split}') could not be "
            "loaded: the Hugging Face hub is unreachable and the dataset is not in the local "
            f"HF cache. Pre-download it on a machine with internet "
            f"(datasets.load_dataset('{task.hf_path}')), copy the HF cache (HF_HOME) here "
            f"and set HF_DATASETS_OFFLINE=1. Cause: {type(exc).__name__}: {exc}"
        ) from exc
    examples = task.convert(rows, 0)
    return balance_classes(examples, 0) if task.balance else examples

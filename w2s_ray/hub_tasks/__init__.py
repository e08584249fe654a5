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
from w2s_ray.hub_tasks.reference import (
    convert_amazon_polarity,
    convert_anthropic_hh,
    convert_boolq,
    convert_cosmos_qa,
    convert_sciq,
)

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

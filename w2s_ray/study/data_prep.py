"""What a study's jobs see of a dataset: which examples (the pool and test set under the
study's length policy) and which tokens (each input cut to its last `max_length`).

Every job of a dataset calls into this module, so weak, strong and student models are
trained and scored on the same examples, and what was cut or dropped is counted once.
No Ray here.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from w2s_ray.data import PoolAndTest, Splits, halves, select_pool_and_test
from w2s_ray.datasets import DATASETS, Example, TaskData, load_local_file
from w2s_ray.errors import UserError
from w2s_ray.spec import HubDataset, LocalDataset
from w2s_ray.study.resolve import Study
from w2s_ray.truncation import (
    LadderTokenizers,
    conflicting_positions,
    encode_keep_end,
    token_lengths,
)


@functools.lru_cache(maxsize=8)
def _load_task(ref: str | LocalDataset | HubDataset, revision: str | None) -> TaskData:
    """Loaded once per worker process: several jobs of a trial share the parsed dataset;
    a hub dataset at the revision its job ids hash (None: the loader's default branch)."""
    if isinstance(ref, LocalDataset):
        return load_local_file(Path(ref.path).expanduser())
    card = DATASETS.get(ref if isinstance(ref, str) else ref.name)
    return card.load() if revision is None else card.load(revision=revision)


def task_data(study: Study, dataset: str) -> TaskData:
    return _load_task(study.dataset_ref(dataset), study.dataset_revisions.get(dataset))


@functools.lru_cache(maxsize=16)
def _tokenizer(path: str, trust_remote_code: bool) -> Any:
    from w2s_ray.train.model import load_backbone_tokenizer

    return load_backbone_tokenizer(path, trust_remote_code)


def tokenizer_for(study: Study, model_path: str) -> Any:
    return _tokenizer(model_path, study.spec.trust_remote_code)


def ladder(study: Study, dataset: str) -> LadderTokenizers:
    """One tokenizer per ladder model, to measure texts the way each model will see them."""
    models = tuple(
        (name, tokenizer_for(study, card.resolve_path())) for name, card in study.cards.items()
    )
    return LadderTokenizers(models, study.max_length(dataset))


_SELECTED: dict[tuple[Any, ...], PoolAndTest] = {}


def selected(study: Study, dataset: str) -> PoolAndTest:
    """The pool and test set of `dataset`, chosen once per process."""
    policy = study.spec.data.too_long
    key = (
        study.dataset_ref(dataset),
        study.dataset_revisions.get(dataset),
        study.data_config,
        study.max_length(dataset),
        policy,
        tuple(study.length_models()) if policy == "drop" else (),
    )
    if key not in _SELECTED:
        too_long = ladder(study, dataset).too_long if policy == "drop" else None
        _SELECTED[key] = select_pool_and_test(
            dataset, task_data(study, dataset), study.data_config, too_long
        )
    return _SELECTED[key]


def pool_and_test(study: Study, dataset: str) -> tuple[list[Example], list[Example]]:
    chosen = selected(study, dataset)
    return chosen.pool, chosen.test


def splits_for(study: Study, dataset: str, seed: int) -> Splits:
    chosen = selected(study, dataset)
    return halves(chosen.pool, chosen.test, seed)


def encode(study: Study, dataset: str, tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of `texts` as the model sees them: each keeps its last max_length tokens."""
    return encode_keep_end(tokenizer, texts, study.max_length(dataset))


def count_cut(study: Study, dataset: str, tokenizer: Any, texts: list[str]) -> int:
    """How many of `texts` this tokenizer has to cut to max_length."""
    limit = study.max_length(dataset)
    return sum(n > limit for n in token_lengths(tokenizer, texts))


def conflict_free_positions(
    study: Study, dataset: str, tokenizer: Any, texts: list[str], labels: list[int]
) -> list[int]:
    """Positions to train on: all but inputs that, once cut, equal another input with a
    different label (the model cannot tell them apart, so they teach it nothing)."""
    ids = encode(study, dataset, tokenizer, texts)
    bad = conflicting_positions(ids, labels)
    return [i for i in range(len(texts)) if i not in bad]


def data_counts(study: Study, dataset: str) -> list[dict[str, Any]]:
    """One row per split (pool, test): what was available, asked for, used, cut and dropped.

    Under `too_long: error` an input some model would have to cut is refused here, before
    any compute, naming how many and the fix.
    """
    chosen = selected(study, dataset)
    limit = study.max_length(dataset)
    policy = study.spec.data.too_long
    tokenizers = ladder(study, dataset)
    rows = []
    for counts, examples in zip(chosen.counts, (chosen.pool, chosen.test), strict=True):
        texts = [ex.text for ex in examples]
        over = tokenizers.too_long(texts)
        conflicting: set[int] = set()
        for _, tokenizer in tokenizers.tokenizers:
            ids = encode_keep_end(tokenizer, texts, limit)
            conflicting |= conflicting_positions(ids, [ex.label for ex in examples])
        if policy == "error" and any(over):
            raise UserError(
                f"dataset '{dataset}': {sum(over)} of {len(texts)} {counts.split} inputs are "
                f"longer than max_length {limit} tokens for some model of the study (and "
                "`data.too_long: error` is set) — raise train.max_length, or set "
                "data.too_long to keep_end (keep each input's last tokens) or drop"
            )
        rows.append(
            {
                "dataset": dataset,
                "split": counts.split,
                "n_available": counts.n_available,
                "n_requested": counts.n_requested,
                "n_used": counts.n_used,
                "n_cut": sum(over),
                "n_dropped_too_long": counts.n_dropped_too_long,
                # measured under each ladder tokenizer; dropped from the training of the
                # models whose inputs collide (test examples stay: both are real questions)
                "n_dropped_conflicting": len(conflicting) if counts.split == "pool" else 0,
                "n_dropped_straddling": counts.n_dropped_straddling,
                "max_length": limit,
                "too_long": policy,
            }
        )
    return rows

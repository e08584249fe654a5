"""A learnable generative task for tests: the answer names the sentiment that the prompt's
words carry, so tiny decoders learn it in a few epochs. Shared by the answer-task tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

ANSWERS = [" good", " bad"]


def answer_file(path: Path, n: int = 120) -> Path:
    """`n` rows of {text, answer, group} as a local answers file (jsonl)."""
    rng = random.Random(0)
    pos, neg = ["great", "superb", "lovely", "fun"], ["awful", "dull", "poor", "boring"]
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.sample(pos if label else neg, 2) + rng.sample(["the", "film", "plot"], 2)
        rng.shuffle(words)
        prompt = f"{' '.join(words)} {i}\nAnswer:"
        rows.append({"text": prompt, "answer": ANSWERS[1 - label], "group": f"g{i}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def answer_spec(decoders: dict[str, Path], data: Path, **overrides) -> dict:
    """A fine-tune study of the task on the tiny decoders (tests/conftest.py)."""
    return {
        "name": "answers",
        "datasets": [{"name": "sentiment_words", "path": str(data)}],
        "models": [
            {"name": "tiny-gpt2", "path": str(decoders["tiny-gpt2"]), "pretrain_tokens": 1e6},
            {"name": "tiny-llama", "path": str(decoders["tiny-llama"]), "pretrain_tokens": 1e9},
        ],
        "mode": "finetune",
        "methods": ["xent", {"name": "logconf", "options": {"aux_max": 0.5}}],
        "data": {"n_train": 80, "n_test": 40},
        "train": {"epochs": 8, "lr": 3e-3, "batch_size": 8, "max_length": 32},
        **overrides,
    }

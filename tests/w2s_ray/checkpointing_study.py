"""A tiny fine-tune study file whose jobs train for seconds and checkpoint every epoch:
what the tests that kill drivers, workers or nodes mid-training run."""

from __future__ import annotations

from pathlib import Path

import yaml


def checkpointing_study_file(
    tmp_path: Path, name: str, models: dict[str, Path], dataset: Path, seeds: list[int]
) -> Path:
    spec = {
        "name": name,
        "datasets": [{"name": "toy", "path": str(dataset)}],
        "models": [{"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in models.items()],
        "seeds": seeds,
        "mode": "finetune",
        "methods": ["xent"],
        "data": {"n_train": 160, "n_test": 60},
        "train": {"epochs": 20, "lr": 1e-3, "batch_size": 4, "max_length": 16},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path

"""Cached artifacts between jobs: frozen features, weak labels, model weights, checkpoints.

Each is keyed by the content hash (job id) of the job that made it, written atomically and
checked on read; a file that fails the check is rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import polars as pl
import torch
from safetensors.torch import load_file, save

from w2s_ray.cache import atomic_write_bytes, cache_root

log = logging.getLogger(__name__)


def features_path(job_id: str) -> Path:
    return cache_root() / "features" / f"{job_id}.safetensors"


def labels_path(job_id: str) -> Path:
    return cache_root() / "labels" / f"{job_id}.parquet"


def save_features(job_id: str, ids: list[str], features: torch.Tensor) -> None:
    data = save({"features": features.contiguous()}, metadata={"ids": json.dumps(ids)})
    atomic_write_bytes(features_path(job_id), data)


def load_features(job_id: str) -> tuple[dict[str, int], torch.Tensor] | None:
    """(id -> row, features), or None if missing or unreadable (then it is recomputed)."""
    path = features_path(job_id)
    if not path.exists():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            ids = json.loads((handle.metadata() or {})["ids"])
            features = handle.get_tensor("features")
        if features.shape[0] != len(ids) or not torch.isfinite(features).all():
            raise ValueError("shape or values do not match")
    except Exception as exc:
        log.warning("feature cache %s is corrupted (%s); recomputing", path, exc)
        return None
    return {ex_id: i for i, ex_id in enumerate(ids)}, features


def save_labels(job_id: str, ids: list[str], probs: torch.Tensor) -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"id": ids, "p1": probs[:, 1].double().tolist()}).write_parquet(buffer)
    atomic_write_bytes(labels_path(job_id), buffer.getvalue())


def load_labels(job_id: str) -> dict[str, float] | None:
    path = labels_path(job_id)
    if not path.exists():
        return None
    try:
        frame = pl.read_parquet(path)
        if frame["p1"].is_nan().any() or not frame["p1"].is_between(0, 1).all():
            raise ValueError("probabilities outside [0, 1]")
    except Exception as exc:
        log.warning("label cache %s is corrupted (%s); relabeling", path, exc)
        return None
    return dict(zip(frame["id"].to_list(), frame["p1"].to_list(), strict=True))


def save_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    atomic_write_bytes(path, save({k: v.detach().contiguous() for k, v in state.items()}))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


class FileCheckpointer:
    """Training state in one file, replaced atomically at each epoch's end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.resumed_from_step: int | None = None  # set when a run picks up a checkpoint

    def save(self, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.path, buffer.getvalue())

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, weights_only=True)
            self.resumed_from_step = int(state["step"])
            return state
        except Exception as exc:
            log.warning("checkpoint %s is unreadable (%s); starting this job over", self.path, exc)
            return None

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

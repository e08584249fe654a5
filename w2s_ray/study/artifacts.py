"""Cached artifacts between jobs: frozen features, weak labels, prompt scores, model weights,
checkpoints.

Each is keyed by the content hash (job id) of the job that made it, written atomically and
checked on read; a file that fails the check is rebuilt, never trusted.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import torch
from safetensors.torch import load, save

from w2s_ray.cache import atomic_write_bytes, cache_root
from w2s_ray.study.store import StudyStore

log = logging.getLogger(__name__)


def features_path(job_id: str) -> Path:
    return cache_root() / "features" / f"{job_id}.safetensors"


def labels_path(job_id: str) -> Path:
    return cache_root() / "labels" / f"{job_id}.parquet"


def save_features(job_id: str, ids: list[str], features: torch.Tensor, backend: str) -> None:
    metadata = {"ids": json.dumps(ids), "backend": backend}
    atomic_write_bytes(features_path(job_id), save({"features": features.contiguous()}, metadata))


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


def required_features(job_id: str, ids: list[str]) -> torch.Tensor:
    """The cached features of the examples `ids`, in that order, for a job that reads them."""
    loaded = load_features(job_id)
    if loaded is None:
        raise RuntimeError(f"features {job_id} are missing; rerun the study to rebuild")
    rows, features = loaded
    return features[[rows[i] for i in ids]]


def _write_frame(path: Path, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _read_frame(
    path: Path, check: Callable[[pl.DataFrame], None], cache: str, then: str
) -> pl.DataFrame | None:
    """A cached table, or None if missing or if `check` (or reading) fails: then it is
    logged and the caller rebuilds it."""
    if not path.exists():
        return None
    try:
        frame = pl.read_parquet(path)
        check(frame)
    except Exception as exc:
        log.warning("%s cache %s is corrupted (%s); %s", cache, path, exc, then)
        return None
    return frame


def save_labels(job_id: str, ids: list[str], probs: torch.Tensor, backend: str) -> None:
    p1 = probs[:, 1].double().tolist()
    frame = pl.DataFrame({"id": ids, "p1": p1, "backend": [backend] * len(ids)})
    _write_frame(labels_path(job_id), frame)


def _check_probabilities(frame: pl.DataFrame) -> None:
    if frame["p1"].is_nan().any() or not frame["p1"].is_between(0, 1).all():
        raise ValueError("probabilities outside [0, 1]")


def load_labels(job_id: str) -> dict[str, float] | None:
    frame = _read_frame(labels_path(job_id), _check_probabilities, "label", "relabeling")
    if frame is None:
        return None
    return dict(zip(frame["id"].to_list(), frame["p1"].to_list(), strict=True))


def required_labels(job_id: str) -> dict[str, float]:
    """Labels a finished job left for the one reading them; gone, the study must rebuild them."""
    labels = load_labels(job_id)
    if labels is None:
        raise RuntimeError(f"labels {job_id} are missing; rerun the study to rebuild")
    return labels


def answers_path(job_id: str) -> Path:
    return cache_root() / "answers" / f"{job_id}.parquet"


def save_answers(job_id: str, answers: dict[str, str], backend: str) -> None:
    """A weak model's generated answers (generative tasks), by example id."""
    frame = pl.DataFrame(
        {"id": list(answers), "answer": list(answers.values()), "backend": backend}
    )
    _write_frame(answers_path(job_id), frame)


def made_by(path: Path) -> str | None:
    """The inference backend(s) that made a cached artifact ("vllm", "transformers", or
    both joined by "+" when shards ran on different ones); None for files from before it was
    recorded, or unreadable ones (their readers rebuild them)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                return (handle.metadata() or {}).get("backend")
        made = pl.read_parquet(path, columns=["backend"])["backend"]  # absent in old files
    except Exception:
        return None
    return "+".join(sorted({str(b) for b in made.unique().to_list() if b}))


def _check_answers(frame: pl.DataFrame) -> None:
    if frame["answer"].null_count():
        raise ValueError("missing answers")


def load_answers(job_id: str) -> dict[str, str] | None:
    frame = _read_frame(answers_path(job_id), _check_answers, "answer", "generating again")
    if frame is None:
        return None
    return dict(zip(frame["id"].to_list(), frame["answer"].to_list(), strict=True))


def scores_path(job_id: str) -> Path:
    return cache_root() / "scores" / f"{job_id}.parquet"


def save_scores(
    job_id: str, ids: list[str], scores: torch.Tensor, demos_used: list[int], backend: str
) -> None:
    """Each prompt's answer log-probabilities; which backend made them is kept for the record
    only (the job id, and so the cache key, does not depend on it)."""
    frame = pl.DataFrame(
        {
            "id": ids,
            "logprob_0": scores[:, 0].double().tolist(),
            "logprob_1": scores[:, 1].double().tolist(),
            "demos_used": demos_used,
            "backend": [backend] * len(ids),
        }
    )
    _write_frame(scores_path(job_id), frame)


def load_scores(job_id: str, ids: list[str]) -> pl.DataFrame | None:
    """The scores of exactly `ids` in that order, or None if missing or damaged (rescored)."""

    def check(frame: pl.DataFrame) -> None:
        if frame["id"].to_list() != ids:
            raise ValueError("its examples are not this job's")
        logprobs = frame.select("logprob_0", "logprob_1").to_numpy()
        if not (logprobs <= 1e-6).all():  # also false for NaN
            raise ValueError("log-probabilities above 0 or NaN")

    return _read_frame(scores_path(job_id), check, "score", "scoring again")


def backbone_dir(job_id: str) -> Path:
    """A generatively fine-tuned model folder (save_pretrained layout)."""
    return cache_root() / "backbones" / job_id


def save_backbone_record(job_id: str, record: dict[str, float]) -> None:
    """Written last: a folder without it is an unfinished write, redone on the next run."""
    atomic_write_bytes(backbone_dir(job_id) / "w2s-complete.json", json.dumps(record).encode())


def load_backbone_record(job_id: str) -> dict[str, float] | None:
    path = backbone_dir(job_id) / "w2s-complete.json"
    try:
        record = json.loads(path.read_text())
        if not any(backbone_dir(job_id).glob("*.safetensors")):
            raise ValueError("no weights beside the record")
        return record
    except (OSError, ValueError) as exc:
        if path.exists():
            log.warning("model folder %s is incomplete (%s); fine-tuning it again", path, exc)
        return None


def finished_backbone(job_id: str) -> Path:
    """The model folder job `job_id` finished writing, or an error saying how to get it."""
    if load_backbone_record(job_id) is None:
        raise RuntimeError(
            f"the model {job_id} trained is not in this node's cache ({backbone_dir(job_id)}); "
            "on a cluster W2S_CACHE must be shared storage — rerun the study to rebuild it"
        )
    return backbone_dir(job_id)


def save_weights(
    store: StudyStore,
    rel: str,
    state: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """A classifier's weights; `metadata` marks a LoRA adapter file (w2s_ray.train.lora)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    store.write_bytes(rel, save(tensors, metadata or None))


def load_weights(store: StudyStore, rel: str) -> dict[str, torch.Tensor]:
    data = store.read_bytes(rel)
    if data is None:
        raise RuntimeError(f"weights {store.uri(rel)} are missing; rerun the study to rebuild")
    return load(data)


TEST_PREDICTIONS = "test_predictions.parquet"


def save_test_predictions(
    store: StudyStore, job_id: str, ids: list[str], probs: torch.Tensor
) -> None:
    """A ground-truth model's P(label 1) per test example, in its job's folder."""
    buffer = io.BytesIO()
    pl.DataFrame({"id": ids, "p1": probs[:, 1].double().tolist()}).write_parquet(buffer)
    store.write_bytes(store.job_file(job_id, TEST_PREDICTIONS), buffer.getvalue())


def load_test_predictions(store: StudyStore, job_id: str) -> dict[str, float] | None:
    """The predictions `save_test_predictions` wrote, or None if missing or damaged."""
    data = store.read_bytes(store.job_file(job_id, TEST_PREDICTIONS))
    if data is None:
        return None
    try:
        frame = pl.read_parquet(io.BytesIO(data))
        _check_probabilities(frame)
    except Exception as exc:
        log.warning("test predictions of %s are unreadable (%s)", job_id, exc)
        return None
    return dict(zip(frame["id"].to_list(), frame["p1"].to_list(), strict=True))


class FileCheckpointer:
    """Training state in one file of the study, replaced atomically at each save."""

    def __init__(self, store: StudyStore, rel: str) -> None:
        self.store = store
        self.rel = rel
        self.resumed_from_step: int | None = None  # set when a run picks up a checkpoint

    def save(self, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.store.write_bytes(self.rel, buffer.getvalue())

    def load(self) -> dict[str, Any] | None:
        data = self.store.read_bytes(self.rel)
        if data is None:
            return None
        try:
            state = torch.load(io.BytesIO(data), weights_only=True)
            self.resumed_from_step = int(state["step"])
            return state
        except Exception as exc:
            where = self.store.uri(self.rel)
            log.warning("checkpoint %s is unreadable (%s); starting this job over", where, exc)
            return None

    def clear(self) -> None:
        self.store.delete(self.rel)

"""Choosing a student's epoch on held-out examples: by weak labels (a user can do this) or by
ground truth (the oracle, an upper bound to compare against).

Training on weak labels often peaks before its last epoch, once the student starts to
imitate its supervisor's mistakes (Burns et al. 2023, appendix on early stopping). The
choice is recorded in the job's folder at each epoch's end, before its checkpoint, so a
resumed job goes on with the same choice.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from w2s_ray.study import artifacts
from w2s_ray.study.store import StudyStore
from w2s_ray.train.inputs import Inputs
from w2s_ray.train.loop import predict_probs
from w2s_ray.train.metrics import accuracy
from w2s_ray.train.state import StateAccess, WholeState, unwrapped


def held_out(
    ids: list[str], groups: list[str], fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """(train positions, validation positions): whole groups drawn by a seeded hash, so
    related examples (one passage's questions) never sit on both sides, the split does not
    depend on list order, and a method that holds out data sees the same split every run.
    Groups are taken until `fraction` of the examples is held out, skipping any that would
    hold out more than twice that; when no group fits (one big group), the split is by
    example instead."""
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)

    def rank(group: str) -> str:
        return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()

    want = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    val: list[int] = []
    for group in sorted(members, key=rank):
        if len(val) >= want:
            break
        size = len(val) + len(members[group])
        if size <= 2 * want and size < len(ids):  # something always stays to train on
            val += members[group]
    if not val and len(members) < len(ids):
        return held_out(ids, ids, fraction, seed)
    chosen = set(val)
    return [i for i in range(len(ids)) if i not in chosen], sorted(val)


class BestEpoch:
    """An `on_epoch_end` hook that keeps the weights of the best-scoring epoch so far.

    Score: accuracy of the model's predictions against `labels` on `inputs`. Ties keep the
    earlier epoch. One process or DDP: rank 0 scores its whole copy. FSDP: every rank runs
    the forward together (each holds a shard), rank 0 decides, and all join the gather of
    the chosen weights.
    """

    def __init__(
        self,
        store: StudyStore,
        job_id: str,
        tag: str,
        inputs: Inputs,
        labels: torch.Tensor,
        *,
        rank: int = 0,
        access: StateAccess | None = None,
    ) -> None:
        self.store = store
        self.weights = store.job_file(job_id, f"best{tag}.safetensors")
        self.record = store.job_file(job_id, f"best{tag}.json")
        self.inputs = inputs
        self.labels = labels
        self.rank = rank
        self.access = access or WholeState()

    def reset(self) -> None:
        """A job starting from scratch must not inherit an earlier attempt's choice."""
        self.store.delete(self.record)
        self.store.delete(self.weights)

    def __call__(self, model: nn.Module, epochs_done: int) -> None:
        collective = self.access.collective
        if self.rank != 0 and not collective:
            return
        probs = predict_probs(model if collective else unwrapped(model), self.inputs)
        score = accuracy(probs, self.labels)
        improved = False
        if self.rank == 0:
            best = self.store.read_json(self.record)
            redone = best is not None and best.get("epoch") == epochs_done  # a resume redid it
            improved = best is None or score > float(best.get("score", -1.0)) or redone
        if collective:
            improved = self.access.any_rank(improved)  # rank 0's decision, on every rank
        if not improved:
            return
        weights = self.access.model_state(model)  # LoRA: adapters and head only
        if self.rank == 0:
            artifacts.save_weights(self.store, self.weights, weights)
            self.store.write_json(self.record, {"epoch": epochs_done, "score": score})

    def chosen(self) -> tuple[int, float, dict[str, torch.Tensor]]:
        """(epoch, validation accuracy, weights) of the choice; rank 0."""
        best = self.store.read_json(self.record)
        if best is None:
            raise RuntimeError(f"no epoch was scored: {self.store.uri(self.record)} is missing")
        weights = artifacts.load_weights(self.store, self.weights)
        return int(best["epoch"]), float(best["score"]), weights

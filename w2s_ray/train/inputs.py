"""Training inputs as index-addressable batches: cached features or token ids (dynamic padding)."""

from __future__ import annotations

from typing import Protocol

import torch


class Inputs(Protocol):
    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]: ...


class FeatureInputs:
    """Rows of a [N, D] feature matrix, passed to the model as `features`."""

    def __init__(self, features: torch.Tensor) -> None:
        self.features = features

    def __len__(self) -> int:
        return self.features.shape[0]

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": self.features[indices]}


class TokenInputs:
    """Token id lists padded per batch to the batch's longest, not to the global maximum."""

    def __init__(self, token_ids: list[list[int]], pad_id: int) -> None:
        self.token_ids = token_ids
        self.pad_id = pad_id

    def __len__(self) -> int:
        return len(self.token_ids)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = [self.token_ids[i] for i in indices.tolist()]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[torch.Tensor]:
    """Inference batches of similar lengths, so little compute goes to padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [torch.tensor(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]

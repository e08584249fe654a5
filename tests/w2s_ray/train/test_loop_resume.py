"""A fine-tune killed at any step resumes from its checkpoint to the very same weights."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from w2s_ray.train.inputs import FeatureInputs
from w2s_ray.train.loop import TrainConfig, fit


class MemoryCheckpointer:
    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.saves = 0

    def save(self, state: dict[str, Any]) -> None:
        self.state = copy.deepcopy(state)  # as a file would: no live references
        self.saves += 1

    def load(self) -> dict[str, Any] | None:
        return self.state


class Killed(Exception):
    pass


class DropoutProbe(nn.Module):
    """A head with dropout, so the RNG state matters to the result."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


def _data() -> tuple[FeatureInputs, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, generator=gen)
    p1 = torch.sigmoid(x[:, 0] * 2)
    return FeatureInputs(x), torch.stack([1 - p1, p1], dim=1)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return DropoutProbe(8)


# dropout on (the default is off): the RNG state must be restored for a resume to match
CFG = TrainConfig(epochs=3, lr=1e-2, batch_size=8, seed=3, loss="logconf", dropout=True)


def _uninterrupted() -> dict[str, torch.Tensor]:
    inputs, targets = _data()
    torch.manual_seed(1)
    return fit(_model(), inputs, targets, CFG).state_dict()


@pytest.mark.parametrize("kill_at_step", [1, 6, 7, 13, 20])
def test_resume_after_a_kill_mid_epoch_gives_the_same_weights(kill_at_step):
    inputs, targets = _data()
    expected = _uninterrupted()
    checkpointer = MemoryCheckpointer()

    class KillingInputs(FeatureInputs):
        calls = 0

        def batch(self, indices):
            KillingInputs.calls += 1
            if KillingInputs.calls == kill_at_step + 1:
                raise Killed
            return super().batch(indices)

    torch.manual_seed(1)
    with pytest.raises(Killed):
        # checkpoint after every step, as a slow job would every few minutes
        fit(
            _model(),
            KillingInputs(inputs.features),
            targets,
            CFG,
            checkpointer,
            checkpoint_seconds=0.0,
        )
    assert checkpointer.state is not None and checkpointer.state["step"] == kill_at_step
    torch.manual_seed(99)  # a fresh process: its RNG is wherever it is
    resumed = fit(_model(), inputs, targets, CFG, checkpointer, checkpoint_seconds=0.0)
    for name, value in resumed.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_a_different_seed_gives_a_different_data_order_and_result():
    inputs, targets = _data()
    torch.manual_seed(1)
    other = fit(_model(), inputs, targets, TrainConfig(**{**CFG.__dict__, "seed": 4}))
    expected = _uninterrupted()
    assert not torch.equal(other.state_dict()["net.0.weight"], expected["net.0.weight"])


def test_checkpoints_at_each_epoch_end_by_default():
    inputs, targets = _data()
    checkpointer = MemoryCheckpointer()
    fit(_model(), inputs, targets, CFG, checkpointer)
    assert checkpointer.saves == CFG.epochs
    assert checkpointer.state["epoch"] == CFG.epochs and checkpointer.state["step"] == 21

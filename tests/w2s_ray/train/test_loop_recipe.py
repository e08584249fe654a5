"""The fine-tuning recipe: the reference code's by default (dropout off while training, a
cosine schedule without warm-up, no gradient clipping), each switchable in TrainConfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from w2s_ray.train.inputs import FeatureInputs, TokenInputs
from w2s_ray.train.loop import TrainConfig, _schedule, fit
from w2s_ray.train.model import FinetuneClassifier, load_backbone

TEXTS = ["good fine film", "bad dull plot", "great fun story", "awful boring scene"] * 3


class TwoForwards(nn.Module):
    """Runs the classifier twice on each training batch and records whether the two
    outputs were equal: they differ only if dropout is active."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.same: list[bool] = []

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        out = self.inner(**batch)
        with torch.no_grad():
            again = self.inner(**batch)
        self.same.append(torch.equal(out.detach(), again))
        return out


def _bert_fit(path: Path, cfg: TrainConfig, global_seed: int) -> tuple[TwoForwards, bool]:
    """Fine-tune the tiny BERT (dropout 0.1 in its config) after seeding the global RNG
    with `global_seed`; also says whether training left the global RNG state untouched."""
    backbone, tokenizer = load_backbone(str(path))
    model = TwoForwards(FinetuneClassifier(backbone, "mean"))
    inputs = TokenInputs(tokenizer(TEXTS)["input_ids"], tokenizer.pad_token_id)
    p1 = torch.tensor([0.9, 0.1, 0.8, 0.2] * 3)
    torch.manual_seed(global_seed)
    before = torch.get_rng_state()
    fit(model, inputs, torch.stack([1 - p1, p1], 1), cfg)
    return model, torch.equal(before, torch.get_rng_state())


CFG = TrainConfig(epochs=2, lr=1e-3, batch_size=4, seed=0)


def test_by_default_dropout_is_off_while_training_and_no_random_number_is_drawn(tiny_models):
    path = tiny_models["tiny-s"]
    model, rng_untouched = _bert_fit(path, CFG, global_seed=1)
    assert model.same and all(model.same)  # eval mode: the same batch, the same output
    assert rng_untouched
    # so training is a function of the data order alone: another global seed, same weights
    other, _ = _bert_fit(path, CFG, global_seed=2)
    for name, weight in model.state_dict().items():
        assert torch.equal(weight, other.state_dict()[name]), name
    assert any(p.grad is not None for p in model.parameters())  # gradients did flow


def test_dropout_option_trains_with_the_models_dropout(tiny_models):
    cfg = TrainConfig(**{**CFG.__dict__, "dropout": True})
    model, rng_untouched = _bert_fit(tiny_models["tiny-s"], cfg, global_seed=1)
    # two forwards of one batch differ: dropout 0.1 is active (from the second step: the
    # head starts at zero, so the first step's logits are zero either way)
    assert len(model.same) > 1 and not any(model.same[1:])
    assert not rng_untouched


def test_default_schedule_is_cosine_annealing_without_warmup():
    """What the reference builds: `CosineAnnealingLR(optimizer, total_steps)`."""
    total = 10
    ours = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    theirs = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    ours_schedule = _schedule(ours, total, int(CFG.warmup_frac * total))
    theirs_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, total)
    for _ in range(total):
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"])
        ours.step(), theirs.step()
        ours_schedule.step(), theirs_schedule.step()


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


def _probe_fit(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen) * 50  # large inputs: large gradients
    p1 = torch.sigmoid(x[:, 0])
    torch.manual_seed(0)
    return fit(SmallNet(), FeatureInputs(x), torch.stack([1 - p1, p1], 1), cfg).state_dict()


def test_gradients_are_clipped_only_when_asked_and_warmup_is_an_option():
    cfg = TrainConfig(epochs=3, lr=1e-2, batch_size=8, seed=0)
    plain = _probe_fit(cfg)
    # no clipping by default: the same as a cap no gradient reaches
    unreachable = _probe_fit(TrainConfig(**{**cfg.__dict__, "grad_clip": 1e12}))
    clipped = _probe_fit(TrainConfig(**{**cfg.__dict__, "grad_clip": 1e-6}))
    warmed = _probe_fit(TrainConfig(**{**cfg.__dict__, "warmup_frac": 0.3}))
    for name, weight in plain.items():
        torch.testing.assert_close(unreachable[name], weight)
    assert any(not torch.allclose(clipped[n], w) for n, w in plain.items())
    assert any(not torch.allclose(warmed[n], w) for n, w in plain.items())

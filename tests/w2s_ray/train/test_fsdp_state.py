"""FSDP over 2 gloo processes trains the single-process model, and its checkpoints resume
under either layout: a preempted sharded job loses nothing, whatever runs it next."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("fsdp_ranks.py")


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _train(
    out: Path, world: int, stop_after_epoch: int | None = None, select: bool = False
) -> None:
    out.mkdir(exist_ok=True)
    args = [sys.executable, str(SCRIPT), str(out), str(world)]
    if stop_after_epoch is not None:
        args += ["--stop-after-epoch", str(stop_after_epoch)]
    if select:
        args.append("--select")
    env = {**os.environ, "FSDP_TEST_PORT": _free_port(), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "weights.pt")


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.fixture(scope="module")
def single_dir(tmp_path_factory) -> Path:
    """One process, also choosing an epoch on held-out rows (which changes no weight)."""
    out = tmp_path_factory.mktemp("single")
    _train(out, 1, select=True)
    return out


@pytest.fixture(scope="module")
def single(single_dir) -> dict[str, torch.Tensor]:
    return _weights(single_dir)


def test_a_preempted_fsdp_job_resumes_to_the_single_process_model(single, tmp_path):
    _train(tmp_path, 2, stop_after_epoch=1)
    assert not (tmp_path / "weights.pt").exists()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 1
    _train(tmp_path, 2)
    _assert_same(single, _weights(tmp_path))
    # the checkpoint is whole and in the single-process layout
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["model"].keys() == single.keys()
    assert state["model"]["head.weight"].shape == single["head.weight"].shape
    assert all(isinstance(k, int) for k in state["optimizer"]["state"])


def test_checkpoints_move_between_fsdp_and_one_process(single, tmp_path):
    sharded_first = tmp_path / "sharded-first"
    _train(sharded_first, 2, stop_after_epoch=1)
    _train(sharded_first, 1)
    _assert_same(single, _weights(sharded_first))

    whole_first = tmp_path / "whole-first"
    _train(whole_first, 1, stop_after_epoch=2)
    _train(whole_first, 2)
    _assert_same(single, _weights(whole_first))


def test_epoch_choice_under_fsdp_matches_one_process(single, single_dir, tmp_path):
    """Sharded ranks score the held-out rows together and gather the chosen weights."""
    whole, sharded = single_dir, tmp_path / "sharded"
    _train(sharded, 2, select=True)
    _assert_same(single, _weights(sharded))  # choosing an epoch does not change training
    chosen = json.loads((whole / "chosen.json").read_text())
    assert json.loads((sharded / "chosen.json").read_text()) == chosen
    assert 1 <= chosen["epoch"] <= 3
    _assert_same(torch.load(whole / "chosen.pt"), torch.load(sharded / "chosen.pt"))
    if chosen["epoch"] < 3:
        assert not torch.equal(
            torch.load(whole / "chosen.pt")["head.weight"], single["head.weight"]
        )

"""The fault drill (bench/fault_injection.py) on tiny models: the driver SIGKILLed at random
moments and resumed, a trial's worker killed mid-training, and the end equal to a run that
was never interrupted, with no finished job or cached weak label redone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from checkpointing_study import checkpointing_study_file

pytestmark = pytest.mark.slow

DRILL = Path(__file__).parents[3] / "bench" / "fault_injection.py"


def _drill_module():
    spec = importlib.util.spec_from_file_location("fault_injection", DRILL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_random_driver_kills_and_a_worker_kill_end_as_the_uninterrupted_run(
    tiny_models, toy_dataset, tmp_path
):
    drill = _drill_module()
    study = checkpointing_study_file(tmp_path, "killed", tiny_models, toy_dataset, [0])
    report = drill.run_drill(study, tmp_path, kills=2, seed=3, kill_worker=True)
    drill.print_report(report)
    assert report["problems"] == [], report["problems"]
    kinds = [event.kind for event in report["events"]]
    assert kinds.count("driver killed") == 2, kinds
    assert "worker killed" in kinds, kinds  # the study was still training at the last launch
    # the killed worker's job (and any job the drivers were killed in) went on from its
    # checkpoint, not from step 0
    assert report["resumed_from_step"]
    assert all(int(step) > 0 for step in report["resumed_from_step"].values())

"""Injected faults, for proving that a study survives crashes (tests, `bench/`, drills).

A study directory may hold `faults.json`, a list of faults such as
`{"stage": "student", "action": "raise", "after_epochs": 1, "times": 1}`: the first
`times` training jobs of that stage to finish `after_epochs` epochs (and checkpoint them)
then raise an error (`raise`) or kill their worker process (`exit`). Each firing is
claimed with an exclusive file, so a fault fires exactly `times` times across all workers
and restarts. Without the file nothing happens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FAULTS_FILE = "faults.json"


class InjectedFault(RuntimeError):
    """A crash on purpose; Tune treats it like any crash and retries the trial."""


def _claim(study_dir: Path, index: int, times: int) -> bool:
    fired = study_dir / "faults-fired"
    fired.mkdir(exist_ok=True)
    for n in range(times):
        try:
            os.close(os.open(fired / f"{index}-{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            continue
    return False


def _faults(study_dir: Path) -> list[dict[str, Any]]:
    path = study_dir / FAULTS_FILE
    if not path.exists():
        return []
    faults = json.loads(path.read_text())
    return faults if isinstance(faults, list) else [faults]


class FaultReporter:
    """A training Reporter that fires the study's injected faults at epoch ends."""

    def __init__(self, study_dir: Path, stage: str) -> None:
        self.study_dir = study_dir
        self.stage = stage
        self.faults = _faults(study_dir)

    def report(self, metrics: dict[str, float]) -> None:
        for index, fault in enumerate(self.faults):
            due = fault.get("stage") in (None, self.stage) and metrics.get("epoch") == fault.get(
                "after_epochs", 1
            )
            if due and _claim(self.study_dir, index, int(fault.get("times", 1))):
                if fault.get("action") == "exit":
                    os._exit(17)  # as if the machine went away: no cleanup, no report
                raise InjectedFault(f"injected fault #{index} ({fault}) in stage {self.stage}")

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
from typing import Any

from w2s_ray.study.store import StudyStore

FAULTS_FILE = "faults.json"


class InjectedFault(RuntimeError):
    """A crash on purpose; Tune treats it like any crash and retries the trial."""


def _claim(store: StudyStore, index: int, times: int) -> bool:
    return any(store.claim(f"faults-fired/{index}-{n}") for n in range(times))


def _faults(store: StudyStore) -> list[dict[str, Any]]:
    data = store.read_bytes(FAULTS_FILE)
    if data is None:
        return []
    faults = json.loads(data)
    return faults if isinstance(faults, list) else [faults]


class FaultReporter:
    """A training Reporter that fires the study's injected faults at epoch ends."""

    def __init__(self, store: StudyStore, stage: str) -> None:
        self.store = store
        self.stage = stage
        self.faults = _faults(store)

    def report(self, metrics: dict[str, float]) -> None:
        for index, fault in enumerate(self.faults):
            due = fault.get("stage") in (None, self.stage) and metrics.get("epoch") == fault.get(
                "after_epochs", 1
            )
            if due and _claim(self.store, index, int(fault.get("times", 1))):
                if fault.get("action") == "exit":
                    os._exit(17)  # as if the machine went away: no cleanup, no report
                raise InjectedFault(f"injected fault #{index} ({fault}) in stage {self.stage}")

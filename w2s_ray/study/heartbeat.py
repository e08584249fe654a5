"""The driver's heartbeat in `driver.json`: how `status` tells a running study from a dead one.

Reading files is all `status` may do (it must work with no Ray and after a crash), so the
driver rewrites this file every few seconds; a stale heartbeat means nobody is running it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from types import TracebackType
from typing import Any

from w2s_ray.study.store import StudyStore

BEAT_SECONDS = 5.0
STALE_SECONDS = 60.0  # no beat for this long: the driver is gone


class Heartbeat:
    def __init__(self, store: StudyStore, address: str | None, cluster: dict[str, float]) -> None:
        previous = store.read_driver() or {}
        now = time.time()
        self.store = store
        self.state: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "address": address or "local",
            "cluster": cluster,
            "first_started_at": previous.get("first_started_at", now),
            "started_at": now,
            "runs": int(previous.get("runs", 0)) + 1,
            # time spent running by earlier drivers, for the elapsed time of the whole study
            "earlier_seconds": float(previous.get("earlier_seconds", 0.0)) + _ran_for(previous),
            "finished_at": None,
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="w2s-heartbeat", daemon=True)

    def _write(self) -> None:
        self.state["heartbeat_at"] = time.time()
        with contextlib.suppress(OSError):  # a full disk shows up where results are written
            self.store.write_driver(self.state)

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_SECONDS):
            self._write()

    def __enter__(self) -> Heartbeat:
        self._write()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.state["finished_at"] = time.time()
        self._write()


def _ran_for(driver: dict[str, Any]) -> float:
    if "started_at" not in driver:
        return 0.0
    end = driver.get("finished_at") or driver.get("heartbeat_at") or driver["started_at"]
    return max(0.0, float(end) - float(driver["started_at"]))


def is_alive(driver: dict[str, Any] | None, now: float | None = None) -> bool:
    if not driver or driver.get("finished_at"):
        return False
    return (now or time.time()) - float(driver.get("heartbeat_at", 0)) < STALE_SECONDS


def other_driver(driver: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether another live driver runs this study (two would run every job twice).

    On this machine the pid settles it at once, so a resume right after a crash is not
    kept waiting for the heartbeat to go stale; elsewhere the heartbeat decides.
    """
    if not is_alive(driver, now):
        return False
    assert driver is not None
    if driver.get("host") == socket.gethostname():
        if int(driver.get("pid", -1)) == os.getpid():
            return False
        try:
            os.kill(int(driver["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def elapsed_seconds(driver: dict[str, Any] | None, now: float | None = None) -> float:
    """Time the study has been running, over all its drivers (not the gaps between them)."""
    if not driver:
        return 0.0
    current = (
        (now or time.time()) - float(driver["started_at"])
        if is_alive(driver, now)
        else (_ran_for(driver))
    )
    return float(driver.get("earlier_seconds", 0.0)) + current

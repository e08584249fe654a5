"""How a job ended when it did not finish: a typed record, written as JSON, never parsed
back out of free text."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

ErrorKind = Literal["user", "write", "crash"]
KINDS: tuple[ErrorKind, ...] = ("user", "write", "crash")


@dataclass(frozen=True)
class JobError:
    """`user`: the job's inputs are at fault (a bad file, a diverging loss); running it
    again fails alike, so it is not retried. `write`: a study file could not be written (a
    full or read-only disk); the study stops. `crash`: anything else, possibly the
    machine's fault; the scheduler retries it."""

    kind: ErrorKind
    message: str  # one line, for tables and the CLI
    detail: str = ""  # a crash's traceback
    error_type: str = ""  # the exception's class name

    @property
    def line(self) -> str:
        prefix = f"{self.error_type}: " if self.error_type else ""
        return f"{prefix}{self.message}".splitlines()[0] if self.message else prefix.strip()

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @staticmethod
    def from_json(data: bytes) -> JobError | None:
        """The record in `data`; None when it is not one (a damaged or foreign file)."""
        try:
            raw = json.loads(data)
            kind = raw["kind"]
            if kind not in KINDS:
                return None
            return JobError(
                kind,
                str(raw.get("message", "")),
                str(raw.get("detail", "")),
                str(raw.get("error_type", "")),
            )
        except (ValueError, TypeError, KeyError):
            return None

    @staticmethod
    def of(exc: BaseException, kind: ErrorKind, detail: str = "") -> JobError:
        return JobError(kind, str(exc), detail, type(exc).__name__)

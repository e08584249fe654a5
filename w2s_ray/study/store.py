"""The study directory: job folders, atomic result files, and the tables built from them.

Results are plain files a person can read; `results.parquet` is always rebuilt from the
`result.json` files, so a crash can never leave the table and the jobs disagreeing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.fs as pafs

from analysis.schema import RESULT_COLUMNS  # defined once there; importable from here too
from w2s_ray.cache import atomic_write_bytes
from w2s_ray.study.graph import EVALUATED_STAGES
from w2s_ray.study.outcome import JobError

ERROR_FILE = "error.json"


def is_uri(location: str | Path) -> bool:
    return "://" in str(location)


def resolve_location(location: str | Path) -> str:
    """A URI as given; a local path made absolute (Tune runs trials in other directories)."""
    if is_uri(location):
        return str(location).rstrip("/")
    return str(Path(location).expanduser().resolve())


class StudyStore:
    """Files of one study, on a local disk or any pyarrow filesystem (`s3://`, `gs://`).

    Locally each write goes to a temp file and is renamed into place; on an object store an
    object appears whole when its upload completes. Either way a reader never sees half a
    file, and every reader treats an unreadable file as missing.
    """

    def __init__(self, location: str | Path, filesystem: pafs.FileSystem | None = None) -> None:
        self.location = resolve_location(location)
        if filesystem is not None:  # a filesystem built by the caller (credentials, tests)
            self.fs, self.base = filesystem, self.location.split("://", 1)[-1]
        elif is_uri(self.location):
            self.fs, self.base = pafs.FileSystem.from_uri(self.location)
        else:
            self.fs, self.base = pafs.LocalFileSystem(), self.location
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)

    # ---- paths -------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The local directory (only for a local study)."""
        if not self.is_local:
            raise ValueError(f"{self.location} is not on this machine's disk")
        return Path(self.base)

    def uri(self, *parts: str) -> str:
        """Where Ray (Tune, Train) should keep its own files for `parts`."""
        return "/".join([self.location, *parts])

    def file_path(self, rel: str) -> str:
        """Where `rel` is on the store's filesystem (pyarrow path, no scheme)."""
        return f"{self.base}/{rel}"

    @staticmethod
    def job_file(job_id: str, name: str) -> str:
        return f"jobs/{job_id}/{name}"

    # ---- bytes -------------------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self.file_path(rel)) as stream:
                return stream.read()
        except (OSError, FileNotFoundError):
            return None

    def write_bytes(self, rel: str, data: bytes) -> None:
        if self.is_local:
            atomic_write_bytes(Path(self.file_path(rel)), data)
            return
        parent = self.file_path(rel).rsplit("/", 1)[0]
        with contextlib.suppress(OSError):  # object stores need no folders; others do
            self.fs.create_dir(parent, recursive=True)
        with self.fs.open_output_stream(self.file_path(rel)) as stream:
            stream.write(data)

    def append_text(self, rel: str, text: str) -> None:
        """`text` added at the end of `rel`: on a local disk a true append, so a log of
        thousands of lines is not written again for each (a crash may cut its last line:
        readers skip a cut line); object stores cannot append, so there it is rewritten."""
        if self.is_local:
            path = Path(self.file_path(rel))
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as handle:
                handle.write(text)
            return
        self.write_bytes(rel, (self.read_bytes(rel) or b"") + text.encode())

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.file_path(rel)).type != pafs.FileType.NotFound

    def mtime(self, rel: str) -> float | None:
        info = self.fs.get_file_info(self.file_path(rel))
        if info.type == pafs.FileType.NotFound or info.mtime is None:
            return None
        return info.mtime.timestamp()

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.delete_file(self.file_path(rel))

    def subdirs(self, rel: str) -> list[str]:
        selector = pafs.FileSelector(self.file_path(rel), allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def claim(self, rel: str) -> bool:
        """Create `rel` if it does not exist; True for the one caller that created it."""
        if self.is_local:
            path = Path(self.file_path(rel))
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return False
            return True
        if self.exists(rel):  # object stores have no exclusive create; close enough here
            return False
        self.write_bytes(rel, b"")
        return True

    # ---- json --------------------------------------------------------------------------
    def read_json(self, rel: str) -> dict[str, Any] | None:
        data = self.read_bytes(rel)
        try:
            value = json.loads(data) if data is not None else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def write_json(self, rel: str, payload: Any) -> None:
        self.write_bytes(rel, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())

    # ---- jobs --------------------------------------------------------------------------
    def read_result(self, job_id: str) -> dict[str, Any] | None:
        """A finished job's result, or None; an unreadable file counts as not finished."""
        result = self.read_json(self.job_file(job_id, "result.json"))
        return result if result is not None and result.get("job_id") == job_id else None

    def is_done(self, job_id: str) -> bool:
        return self.read_result(job_id) is not None

    def write_result(self, job_id: str, result: dict[str, Any]) -> None:
        self.write_json(self.job_file(job_id, "result.json"), {"job_id": job_id, **result})
        self.delete(self.job_file(job_id, ERROR_FILE))  # an earlier try's

    def mark_started(self, job_id: str) -> None:
        """Who runs the job since when: `status` tells running, interrupted and retried jobs."""
        previous = self.read_json(self.job_file(job_id, "started.json")) or {}
        self.write_json(
            self.job_file(job_id, "started.json"),
            {
                "started_at": time.time(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "attempt": int(previous.get("attempt", 0)) + 1,
            },
        )

    def write_error(self, job_id: str, error: JobError) -> None:
        self.write_bytes(self.job_file(job_id, ERROR_FILE), error.to_json())

    def read_error(self, job_id: str) -> JobError | None:
        """How the job's last try ended, if it failed (a damaged record reads as a crash)."""
        data = self.read_bytes(self.job_file(job_id, ERROR_FILE))
        if data is None:
            return None
        return JobError.from_json(data) or JobError("crash", "its error.json is unreadable")

    # ---- study -------------------------------------------------------------------------
    def write_plan(self, plan: dict[str, Any]) -> None:
        """Every job with its stage, title and resources, so `status` needs no registry."""
        self.write_json("plan.json", plan)

    def read_plan(self) -> dict[str, Any] | None:
        return self.read_json("plan.json")

    def write_driver(self, driver: dict[str, Any]) -> None:
        self.write_json("driver.json", driver)

    def read_driver(self) -> dict[str, Any] | None:
        return self.read_json("driver.json")

    def write_parquet(self, rel: str, frame: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        self.write_bytes(rel, buffer.getvalue())


def results_frame(results: Iterable[dict[str, Any] | None]) -> pl.DataFrame:
    """The results table from job results already read (None: not finished); a shard's
    result (a slice of its parent's inference, w2s_ray.study.sharding) and an ensemble
    member's ground truth (another seed of a weak model, averaged into its labels) are not
    rows."""
    rows = [
        {col: result.get(col) for col in RESULT_COLUMNS}
        for result in results
        if result is not None
        and result.get("stage") in EVALUATED_STAGES
        and result.get("shard") is None
        and result.get("member") is None
    ]
    return pl.DataFrame(rows, schema=RESULT_COLUMNS).sort("stage", "dataset", "seed", "job_id")

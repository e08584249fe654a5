"""Failed writes (a full disk, a read-only mount) as one clear error, never a half file.

Every study file is written to a temp file and renamed into place (`w2s_ray.cache`), so a
write that fails leaves the previous state and nothing partial. What this module adds is
the message: what could not be written, why, and how to go on without losing finished jobs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

from w2s_ray.errors import UserError
from w2s_ray.study.store import StudyStore

# Errors that only a write can raise: whatever the path, the fix is the disk's.
_DISK_ONLY = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EFBIG: "the file grew past the size this process may write",
}
# Errors a read can raise too: a write failure only when the path is the study's.
_PERMISSION = {
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way of the folder",
}


class StudyWriteError(UserError):
    """A study file could not be written; finished jobs are safe, resuming goes on."""


def is_write_failure(exc: BaseException, store: StudyStore) -> bool:
    if not isinstance(exc, OSError) or exc.errno is None:
        return False
    if exc.errno in _DISK_ONLY:
        return True
    filename = str(exc.filename or "")
    return exc.errno in _PERMISSION and store.is_local and filename.startswith(store.base)


def write_failure(exc: OSError, store: StudyStore) -> StudyWriteError:
    known = _DISK_ONLY.get(exc.errno or 0) or _PERMISSION.get(exc.errno or 0)
    # an object store's error has no errno: its own words are the reason
    reason = f"{known} ({exc.strerror})" if known else (exc.strerror or str(exc))
    where = str(exc.filename or store.location)
    # the study directory, or another place a job writes to (the cache, $W2S_CACHE)
    fix = store.location if where.startswith(store.base) else str(Path(where).parent)
    return StudyWriteError(
        f"cannot write '{where}': {reason} — free space or make '{fix}' "
        f"writable, then `w2s-ray resume {store.location}` (finished jobs are kept, no "
        "result is left half-written); or start over with another --study-dir"
    )


def check_writable(store: StudyStore) -> None:
    """Write and remove a probe file, so a read-only or full study directory is refused
    before Ray starts or any model trains. Folders made for the probe are removed again:
    the study's other checks still run before it writes anything."""
    probe = f".write-probe-{socket.gethostname()}-{os.getpid()}"
    made: list[Path] = []  # deepest first
    if store.is_local:
        missing = store.root
        while not missing.exists() and missing != missing.parent:
            made.append(missing)
            missing = missing.parent
    try:
        if store.is_local:
            store.root.mkdir(parents=True, exist_ok=True)
        store.write_bytes(probe, b"w2s-ray write probe\n")
    except OSError as exc:
        if exc.errno in _DISK_ONLY or exc.errno in _PERMISSION or not store.is_local:
            raise write_failure(exc, store) from None
        raise
    finally:
        store.delete(probe)
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()

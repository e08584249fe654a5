"""What pins the content of a model or dataset: a hub commit, or a digest of a local folder.

Job ids hash these rather than names or paths, so results, cached features and labels never
outlive the inputs they were made from: a hub repository that moved on, or a model folder
retrained in place. Nothing here reaches the hub when `HF_HUB_OFFLINE=1`.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import logging
import os
import re
from pathlib import Path

from w2s_ray.errors import UserError

log = logging.getLogger(__name__)

COMMIT = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_BRANCH = "main"
# What w2s-ray loads from a model repository or folder: config, safetensors weights and their
# index, tokenizer files (vocab, merges, sentencepiece, tiktoken), chat templates, remote code.
# A hub snapshot downloads only these; a local folder's digest covers exactly these.
MODEL_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja", "*.py")
# Files this size or smaller are hashed outright; bigger ones (weights) once per version.
_HASH_CACHE_MIN_BYTES = 1 << 20


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    return None if value is None else value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """`HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) as set now, not when huggingface_hub
    was imported: a driver may set it after start-up."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        flag = _env_flag(name)
        if flag is not None:
            return flag
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (HF_HUB_CACHE, HF_HOME)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(os.path.expandvars(cache)).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(home)).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_commit(repo_id: str, repo_type: str, revision: str) -> str | None:
    """The commit the local HF cache last saw for a branch or tag: the cache writes it to
    `refs/<revision>` in the repository's folder whenever it downloads by that name."""
    from huggingface_hub.file_download import repo_folder_name

    folder = hub_cache_dir() / repo_folder_name(repo_id=repo_id, repo_type=repo_type)
    try:
        text = (folder / "refs" / revision).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if COMMIT.match(text) else None


def hub_commit(repo_id: str, repo_type: str, revision: str | None) -> str | None:
    """The commit `revision` (default: the main branch) names: a commit as given, else asked
    of the hub, else read from the local cache; None when neither knows it.

    Raises UserError when the hub answers that the revision does not exist."""
    from huggingface_hub.errors import RevisionNotFoundError

    revision = revision or DEFAULT_BRANCH
    if COMMIT.match(revision):
        return revision
    if not hub_offline():
        from huggingface_hub import HfApi

        try:
            return (
                HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision, timeout=10).sha
            )
        except RevisionNotFoundError:
            raise UserError(
                f"revision '{revision}' of {repo_type} '{repo_id}' does not exist on the hub — "
                "give a commit, tag or branch listed on its page"
            ) from None
        except Exception as exc:  # unreachable, gated, rate-limited: the cache may know
            log.debug("hub lookup of %s@%s failed: %s", repo_id, revision, exc)
    return cached_commit(repo_id, repo_type, revision)


def hub_snapshot(repo_id: str, revision: str) -> str:
    """A local folder holding `repo_id` at `revision` (the model files only), downloaded into
    the HF cache if needed; every loader given this folder reads that revision."""
    return _snapshot(repo_id, revision, str(hub_cache_dir()), hub_offline())


@functools.cache  # loaders ask several times per job; the hub is asked once per process
def _snapshot(repo_id: str, revision: str, cache_dir: str, offline: bool) -> str:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=list(MODEL_FILES),
            local_files_only=offline,
        )
    except Exception as exc:  # offline cache miss, network, gated repo: all need the user
        raise UserError(
            f"model '{repo_id}' at revision '{revision}' is neither on the hub (unreachable or "
            f"refused: {type(exc).__name__}) nor in the local HF cache ({cache_dir}) — "
            f"download it where there is internet (`hf download {repo_id} --revision "
            f"{revision}`) and copy the cache here"
        ) from None


def is_model_file(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in MODEL_FILES)


def folder_digest(folder: Path) -> str:
    """sha256 over the names and contents of a model folder's files (config, weights,
    tokenizer): the same model moved elsewhere keeps it, a retrained one changes it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_model_file(p.name)):
        digest.update(f"{path.name}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """A file's sha256; a big file's is kept in the W2S cache under its (path, size,
    mtime_ns), so planning a study reads its weights once, not every time."""
    from w2s_ray.assets import sha256_file

    stat = path.stat()
    if stat.st_size <= _HASH_CACHE_MIN_BYTES:
        return sha256_file(path)
    from w2s_ray.cache import atomic_write_bytes, cache_root

    version = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    entry = cache_root() / "file-sha256" / hashlib.sha256(version.encode()).hexdigest()
    try:
        known = entry.read_text().strip()
        if re.fullmatch(r"[0-9a-f]{64}", known):
            return known
    except OSError:
        pass
    value = sha256_file(path)
    try:
        atomic_write_bytes(entry, value.encode())
    except OSError as exc:  # a read-only cache only costs the next plan another read
        log.debug("cannot keep the digest of %s in %s: %s", path, entry, exc)
    return value

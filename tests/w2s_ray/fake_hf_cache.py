"""A local Hugging Face cache laid out as huggingface_hub writes it, for tests that resolve
hub revisions offline (the `hf_cache` fixture in tests/conftest.py points HF_HUB_CACHE here)."""

from __future__ import annotations

from pathlib import Path

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


def write_ref(cache: Path, repo_type: str, repo_id: str, ref: str, commit: str) -> Path:
    """`cache/<type>s--org--name/refs/<ref>` holding `commit`; returns the repo's folder."""
    folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (folder / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
    (folder / "refs" / ref).write_text(commit)
    return folder


def fake_hub_repo(cache: Path, repo_id: str, repo_type: str, refs: dict[str, str]) -> Path:
    """A repo with `refs/<branch>` files and a snapshot per commit, the layout huggingface_hub
    writes when it downloads by branch name."""
    folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    for ref, commit in refs.items():
        write_ref(cache, repo_type, repo_id, ref, commit)
        snapshot = folder / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        (snapshot / "config.json").write_text('{"model_type": "gpt2"}')
    return folder

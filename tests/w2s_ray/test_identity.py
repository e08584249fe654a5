"""Hub commits read from a local HF cache laid out as huggingface_hub writes it, and local
folder digests. Nothing here reaches the network: HF_HUB_OFFLINE is set (conftest and here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fake_hf_cache import COMMIT_A, COMMIT_B, fake_hub_repo

from w2s_ray import identity
from w2s_ray.identity import file_digest, folder_digest, hub_commit, hub_snapshot


def test_a_branch_resolves_to_the_commit_the_cache_recorded(hf_cache: Path) -> None:
    fake_hub_repo(hf_cache, "EleutherAI/pythia-70m", "model", {"main": COMMIT_A})
    assert hub_commit("EleutherAI/pythia-70m", "model", None) == COMMIT_A
    assert hub_commit("EleutherAI/pythia-70m", "model", "main") == COMMIT_A
    assert hub_commit("EleutherAI/pythia-70m", "model", "step1000") is None  # never cached
    assert hub_commit("EleutherAI/pythia-160m", "model", None) is None  # not in the cache


def test_a_pinned_commit_needs_no_lookup(hf_cache: Path) -> None:
    assert hub_commit("nobody/nothing", "model", COMMIT_B) == COMMIT_B


def test_the_parquet_branch_resolves_from_its_own_refs_file(hf_cache: Path) -> None:
    # huggingface_hub keeps the commit of branch `refs/convert/parquet` in refs/refs/convert/parquet
    fake_hub_repo(
        hf_cache,
        "dataset-org/dream",
        "dataset",
        {"main": COMMIT_A, "refs/convert/parquet": COMMIT_B},
    )
    assert hub_commit("dataset-org/dream", "dataset", "refs/convert/parquet") == COMMIT_B
    assert hub_commit("dataset-org/dream", "dataset", None) == COMMIT_A
    assert hub_commit("dataset-org/dream", "model", None) is None  # types keep apart


def test_a_damaged_refs_file_is_not_taken_for_a_commit(hf_cache: Path) -> None:
    folder = fake_hub_repo(hf_cache, "gpt2", "model", {"main": COMMIT_A})
    (folder / "refs" / "main").write_text("not a commit")
    assert hub_commit("gpt2", "model", None) is None


def test_a_snapshot_of_a_cached_commit_is_its_folder(hf_cache: Path) -> None:
    folder = fake_hub_repo(hf_cache, "gpt2", "model", {"main": COMMIT_A, "v2": COMMIT_B})
    assert Path(hub_snapshot("gpt2", COMMIT_A)) == folder / "snapshots" / COMMIT_A
    assert Path(hub_snapshot("gpt2", "v2")) == folder / "snapshots" / COMMIT_B


def test_a_snapshot_missing_offline_says_how_to_get_it(hf_cache: Path) -> None:
    from w2s_ray.errors import UserError

    with pytest.raises(UserError, match=r"'gpt2' at revision '" + COMMIT_B + r"'.*hf download"):
        hub_snapshot("gpt2", COMMIT_B)


def _model_folder(path: Path, weights: bytes) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "bert"}')
    (path / "model.safetensors").write_bytes(weights)
    (path / "tokenizer.json").write_text("{}")
    (path / "README.md").write_text("notes")
    return path


def test_a_folder_digest_follows_content_not_place(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "m", b"weights-1")
    before = folder_digest(folder)
    moved = tmp_path / "elsewhere" / "m"
    moved.parent.mkdir()
    shutil.move(folder, moved)
    assert folder_digest(moved) == before
    (moved / "README.md").write_text("other notes")  # not read by any loader
    assert folder_digest(moved) == before
    (moved / "tokenizer.json").write_text('{"added": 1}')  # tokenizer files change inputs
    assert folder_digest(moved) != before


def test_big_files_are_hashed_once_per_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    big = tmp_path / "model.safetensors"
    big.write_bytes(os.urandom(2 << 20))
    first = file_digest(big)
    from w2s_ray.assets import sha256_file

    assert first == sha256_file(big)
    reads: list[Path] = []
    monkeypatch.setattr("w2s_ray.assets.sha256_file", lambda p: reads.append(p) or "0" * 64)
    assert file_digest(big) == first and reads == []  # the kept digest, the file not read
    big.write_bytes(os.urandom(2 << 20))  # retrained: new mtime, new digest
    assert file_digest(big) == "0" * 64 and reads == [big]


def test_offline_mode_is_read_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not identity.hub_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert identity.hub_offline()

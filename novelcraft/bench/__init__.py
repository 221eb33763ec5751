"""Benchmarks of novels, generated or human: judge-free metrics, memory quality, an optional LLM-judge
rubric, the human baseline and a Markdown/HTML report.

::

    from novelcraft.bench import load_novel, score_novel, load_embedder, load_human_baseline, new_report, write_report

    novel = load_novel("runs/gen/novel.md")
    scores = score_novel(novel, embedder=load_embedder())
    write_report(new_report([scores], load_human_baseline()), "runs/bench/report")

Submodules are imported on first use, so importing this package loads neither numpy nor matplotlib.
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .recipe import BenchRecipe

_EXPORTS = {
    "Novel": "novel",
    "NovelScene": "novel",
    "load_novel": "novel",
    "novel_from_book": "novel",
    "parse_markdown_novel": "novel",
    "score_novel": "score",
    "NovelScores": "score",
    "SceneScores": "score",
    "METRICS": "catalog",
    "reference_index_for": "score",
    "Embedder": "embed",
    "MiniLMEmbedder": "embed",
    "TfidfEmbedder": "embed",
    "load_embedder": "embed",
    "RubricScores": "judge",
    "judge_novel": "judge",
    "judge_summary": "judge",
    "rubric_messages": "judge",
    "HumanBaseline": "baseline",
    "build_human_baseline": "baseline",
    "load_human_baseline": "baseline",
    "BenchReport": "report",
    "new_report": "report",
    "write_report": "report",
    "run_speed_benchmarks": "speed",
    "benchmark": "runner",
    "run_bench": "runner",
}

__all__ = ["BenchRecipe", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)

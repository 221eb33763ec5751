"""``novelcraft bench`` end to end: load novels, score them, add the human baseline and speed figures, report."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import NovelcraftError
from ..io import atomic_write_json
from ..models import NovelSource
from ..recipes import write_resolved_recipe
from ..runs import files_with_suffix, resolve_inputs
from ..stats import ItemStats, RunStats
from .baseline import HumanBaseline, build_human_baseline, load_human_baseline
from .embed import Embedder, load_embedder
from .judge import JudgeFn, judge_novel, judge_summary
from .novel import Novel, load_novel
from .recipe import BenchRecipe
from .report import BenchReport, new_report, write_report
from .score import NovelScores, reference_index_for, score_novel
from .speed import run_speed_benchmarks

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

log = logging.getLogger(__name__)

NOVEL_SUFFIXES = (".md", ".markdown", ".json", ".epub")


def expand_paths(items: Sequence[str], *, step: str = "bench.load") -> list[Path]:
    """Files, folders (their novel files, sorted) and glob patterns; a missing path is an error."""
    return resolve_inputs(items, files_with_suffix(NOVEL_SUFFIXES), what="novels (.md, .json, .epub)", step=step)


class _LazyCounter:
    """The Qwen3 token counter, loaded only when an EPUB has to be prepared."""

    def __init__(self) -> None:
        self._c: TokenCounter | None = None

    def get(self) -> TokenCounter:
        """The counter, loaded on the first call."""
        if self._c is None:
            from ..tokens import load_token_counter

            self._c = load_token_counter()
        return self._c


def _load_all(paths: Sequence[Path], counter: _LazyCounter, source: NovelSource | None = None) -> list[Novel]:
    return [load_novel(p, source=source, counter=counter.get() if p.suffix.lower() == ".epub" else None) for p in paths]


@runtime_checkable
class _Windowed(Protocol):
    """An embedder that cuts long texts into windows (MiniLM): the recipe sets how many count."""

    max_windows: int


def make_embedder(recipe: BenchRecipe) -> Embedder | None:
    """The recipe's embedder (``None`` for ``model: none``)."""
    if recipe.embedding.model == "none":
        return None
    emb = load_embedder(recipe.embedding.model)
    if isinstance(emb, _Windowed):
        emb.max_windows = recipe.embedding.max_windows
    return emb


def human_baseline_for(
    recipe: BenchRecipe, embedder: Embedder | None, counter: _LazyCounter | None = None
) -> HumanBaseline | None:
    """The baseline the recipe asks for: packaged, a file, computed now from ``baseline.books``, or none."""
    src = recipe.baseline.source
    if src == "none":
        return None
    if src == "packaged":
        return load_human_baseline()
    if src == "file":
        return load_human_baseline(recipe.baseline.file)
    books = _load_all(
        expand_paths(recipe.baseline.books, step="bench.baseline"), counter or _LazyCounter(), source="human"
    )
    return build_human_baseline(books, embedder=embedder, bins=recipe.bins)


def benchmark(recipe: BenchRecipe, *, judge: JudgeFn | None = None) -> BenchReport:
    """Score the recipe's novels (references, embedder, optional judge), attach the human baseline and,
    when enabled, the speed benchmarks. Writes nothing."""
    counter = _LazyCounter()
    embedder = make_embedder(recipe)
    novels = _load_all(expand_paths(recipe.novels), counter)
    refs = None
    if recipe.references:
        ref_novels = _load_all(expand_paths(recipe.references, step="bench.references"), counter, source="human")
        refs = reference_index_for(ref_novels)
    scores: list[NovelScores] = []
    for nv in novels:
        s = score_novel(nv, references=refs, embedder=embedder, bins=recipe.bins)
        if recipe.judge.enabled:
            if judge is None and recipe.judge.llm is not None:
                from ..llm.factory import make_engine
                from ..llm.tasks import engine_judge

                judge = engine_judge(make_engine(recipe.judge.llm), max_tokens=recipe.judge.max_tokens)
            if judge is None:
                raise NovelcraftError(
                    "judge.enabled is true but no judge engine was given (set judge.llm)", step="bench.judge"
                )
            s.judge = judge_summary(judge_novel(nv, judge, max_scenes=recipe.judge.max_scenes))
        scores.append(s)
    baseline = human_baseline_for(recipe, embedder, counter)
    speed = []
    if recipe.speed.enabled:
        speed = run_speed_benchmarks(
            recipe.speed.dir,
            names=recipe.speed.only or None,
            expected=recipe.speed.expected,
            args=recipe.speed.args,
            timeout_s=recipe.speed.timeout_s,
        )
    return new_report(scores, baseline, speed)


def run_bench(
    recipe: BenchRecipe, *, judge: JudgeFn | None = None, out_dir: str | Path | None = None
) -> tuple[BenchReport, dict[str, Path]]:
    """:func:`benchmark`, then the report, ``recipe.resolved.yaml`` and ``stats.json`` in ``out_dir``
    (default: the recipe's run directory). A computed baseline is also saved as ``human_baseline.json``."""
    t0 = time.perf_counter()
    report = benchmark(recipe, judge=judge)
    out = Path(out_dir) if out_dir else recipe.run_dir
    paths = write_report(report, out)
    write_resolved_recipe(recipe, out)
    if recipe.baseline.source == "compute" and report.baseline is not None:
        paths["baseline"] = atomic_write_json(out / "human_baseline.json", report.baseline)
    stats = RunStats(
        command="bench",
        name=recipe.name,
        run_dir=str(out),
        items=[
            ItemStats(
                id=n.title,
                source=n.path,
                counts={"scenes": len(n.scenes), "words": int(n.summary.get("words") or 0)},
                seconds={"score": round(n.seconds, 2)},
            )
            for n in report.novels
        ],
        notes=[
            f"speed {s.name}: {s.status}" + (f" ({s.seconds:.1f} s)" if s.seconds is not None else "")
            for s in report.speed
        ]
        + [f"report: {paths['markdown']} {paths['html']} {paths['json']}"],
        details={
            "baseline": report.baseline.created if report.baseline else None,
            "speed": {s.name: s.status for s in report.speed},
            "outputs": {k: str(v) for k, v in paths.items()},
        },
        seconds=round(time.perf_counter() - t0, 2),
    )
    paths["stats"] = stats.write(out)
    return report, paths

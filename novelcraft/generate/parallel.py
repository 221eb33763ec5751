"""The scene loop over a set of novels, in this process or as groups of novels on an executor's workers.

:func:`advance_novels` takes novels from their checkpoints to their last scene in lockstep (world contexts,
outlines, then scene *n* and its summary for every *n*) and writes their files. With ``executor.workers: N``
the novels are dealt into N groups (novel *i* to group *i mod N*, so a re-run deals them the same way); each
group is one unit of work that reads its novels' checkpoints, makes its own engine from the recipe's ``llm``
(an in-process vLLM per GPU with ``gpus_per_worker: 1``, or a client of a server pool) and runs the same loop.
A group whose worker died is redone from the checkpoints and answers its dead worker saved, so nothing is
generated twice. The run directory's manifest and answer stores are shared under file locks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..executors.base import Executor, Unit, UnitContext
from ..llm.types import Engine
from ..runs import Manifest
from ..stats import StageStats
from ..tokens import TokenCounter
from .outline import Outline
from .output import write_novel_files
from .recipe import GenerateRecipe
from .state import NovelState, load_state, state_path
from .steps import NovelHandle, Stepper, checkpoint


@dataclasses.dataclass
class Advanced:
    """What the loop did to a set of novels: their states, engine work per stage, steps, files written."""

    states: list[NovelState]
    stages: dict[str, StageStats]
    steps: list[dict[str, Any]]
    files: dict[str, list[Path]]
    prefix_cache_hit_rate: float | None = None


def advance_novels(
    novels: Sequence[NovelHandle],
    recipe: GenerateRecipe,
    engine: Engine,
    counter: TokenCounter,
    run_dir: Path,
    override: Outline | None,
    *,
    progress: bool = False,
    on_step: Callable[[], object] | None = None,
) -> Advanced:
    """World contexts, outlines, then every scene and summary of ``novels`` in lockstep; their files."""
    from tqdm.auto import tqdm

    runner = Stepper(recipe, engine, counter, run_dir, progress)
    runner.save(novels)
    runner.world_contexts(novels)
    runner.outlines(novels, override)
    steps = max(n.state.total for n in novels)
    bar = tqdm(total=steps, desc="scenes", unit="step", disable=not progress)
    for position in range(1, steps + 1):
        need_scene = [n for n in novels if len(n.state.scenes) == position - 1 and position <= n.state.total]
        if need_scene:
            runner.scenes(need_scene, position)
        need_summary = [
            n for n in novels if len(n.state.scenes) >= position and not n.state.scenes[position - 1].summary_done
        ]
        if need_summary:
            runner.summaries(need_summary, position)
        bar.update(1)
        if on_step is not None:
            on_step()
    bar.close()
    files = {
        n.state.novel_id: write_novel_files(
            n.state,
            n.dir,
            opening_summary=recipe.opening_summary,
            markdown=recipe.output.markdown,
            epub=recipe.output.epub,
        )
        for n in novels
    }
    hit_rate = getattr(engine, "prefix_cache_hit_rate", None)
    return Advanced(
        [n.state for n in novels], runner.stats, runner.steps, files, hit_rate() if callable(hit_rate) else None
    )


def group_unit(
    ctx: UnitContext,
    shared: tuple[GenerateRecipe, Engine | None, TokenCounter, Path, Outline | None],
    novel_dirs: list[str],
) -> Advanced:
    """One group of novels on a worker: from their checkpoints to their files (see the module docs)."""
    recipe, engine, counter, run_dir, override = shared
    novels = [NovelHandle(load_state(state_path(d)), Path(d)) for d in novel_dirs]
    own = engine is None
    if engine is None:
        from ..llm.factory import make_engine

        engine = make_engine(recipe.llm)
    try:
        return advance_novels(novels, recipe, engine, counter, run_dir, override, on_step=lambda: ctx.report("steps"))
    finally:
        if own:
            engine.close()


def advance_on_executor(
    novels: Sequence[NovelHandle],
    recipe: GenerateRecipe,
    engine: Engine | None,
    counter: TokenCounter,
    run_dir: Path,
    override: Outline | None,
    executor: Executor,
    *,
    progress: bool = False,
) -> Advanced:
    """:func:`advance_novels` with the novels dealt into groups on ``executor``, merged back in novel order.

    ``engine`` (optional) must be picklable: each worker answers with its own copy; without it every worker
    makes the recipe's engine."""
    from tqdm.auto import tqdm

    from .steps import GenerateError

    checkpoint(novels, Manifest(run_dir / "manifest.json"))  # the workers start from these
    workers = max(1, min(recipe.executor.workers, len(novels)))
    groups = [[str(n.dir) for n in novels[k::workers]] for k in range(workers)]
    units = [Unit(f"novels-{k}", g, str(run_dir / f".novels-{k}.running.json")) for k, g in enumerate(groups) if g]
    total = sum(max(1, n.state.total) for n in novels[:workers])
    bar = tqdm(total=total, desc="scenes", unit="step", disable=not progress)

    def on_report(key: str, what: str, n: int) -> None:
        bar.update(n)

    try:
        results = executor.map(group_unit, (recipe, engine, counter, run_dir, override), units, on_report=on_report)
    finally:
        bar.close()
    lost = [r for r in results if not r.ok]
    if lost:
        raise GenerateError(f"{lost[0].error}; finished steps are checkpointed, re-run with --resume", step="generate")
    by_id = {s.novel_id: s for r in results for s in r.value.states}
    stages = {k: StageStats() for k in ("world_context", "outline", "scenes", "summaries")}
    steps: list[dict[str, Any]] = []
    files: dict[str, list[Path]] = {}
    rates = []
    for r in results:
        for k, s in r.value.stages.items():
            stages.setdefault(k, StageStats()).add(s)
        steps += [{**step, "group": r.key} for step in r.value.steps]
        files.update(r.value.files)
        if r.value.prefix_cache_hit_rate is not None:
            rates.append(r.value.prefix_cache_hit_rate)
    states = [by_id[n.state.novel_id] for n in novels]
    for n, s in zip(novels, states):
        n.state = s
    return Advanced(states, stages, steps, files, sum(rates) / len(rates) if rates else None)

"""Stages 4-7 scheduled over many books: world context, semantic scenes, running summaries, instructions.

The tasks are :mod:`novelcraft.prep.llm_tasks`'s. Each book is a flow (:mod:`novelcraft.llm.scheduler`)
with as few steps as its dependencies allow:

1. its world context and the boundaries of every chapter (window), together: neither needs the other;
2. its running-summary chains (narrative and reference) step by step, since summary *n* needs summary
   *n-1*, each scene's instruction beside its summary (:mod:`~novelcraft.prep.llm_chains`);
3. its files, as soon as its last answer is in.

Every engine call carries the pending requests of every book: first attempts, retries and compressions
together, so one book's retries never hold the others back and the batches stay as full as the books allow.

Prompts put the shared prefix (system message, then the world context) first so engines with prefix
caching reuse it. Every finished answer is appended to ``<run>/llm/<stage>.jsonl`` (a
:class:`~novelcraft.runs.ResultStore`) as its round ends, so a killed run resumes where it stopped and a
finished one is reproduced without engine calls.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io import atomic_write_json
from ..llm.attempts import Outcome, Task
from ..llm.scheduler import Flow
from ..llm.types import Engine
from ..models import Book
from ..stats import StageStats
from ..tokens import TokenCounter
from .llm_chains import summaries_and_instructions
from .llm_runner import PROMPTS, STAGES, BookState, SaveFile, StageError, StageRunner
from .llm_tasks import (
    Window,
    chapter_windows,
    fallback_boundaries,
    scenes_from_starts,
    segmentation_task,
    world_context_task,
)
from .recipe import PrepRecipe
from .stage_files import FlagsFile, LLMFlag, ScenesFile, WorldContextFile

__all__ = ["PROMPTS", "STAGES", "LLMStageResult", "StageError", "apply_flags", "run_llm_stages"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class LLMStageResult:
    """What stages 4-7 produced: the final books, per-stage statistics and the flagged items per book id."""

    books: list[Book]
    stats: dict[str, StageStats]
    flags: dict[str, list[dict[str, Any]]]


def _take_world_context(r: StageRunner, s: BookState, o: Outcome, counter: TokenCounter, save: SaveFile) -> None:
    value = r.accept("world_context", s, o)
    if value is None:
        return
    s.book.meta.world_context = value.render()
    save(
        "04_world_context.json",
        s.book_dir,
        WorldContextFile.of(
            value,
            rendered=s.book.meta.world_context,
            tokens=counter.count(s.book.meta.world_context),
            flagged=o.flagged,
            flag_reason=o.flag_reason,
        ),
    )


def _segmentation_jobs(r: StageRunner, s: BookState) -> list[tuple[Window, Task]]:
    recipe, prompt = r.recipe, r.prompts["segmentation"]
    jobs = []
    for ch in s.book.chapters:
        for w in chapter_windows(ch.blocks, recipe.segmentation.window_tokens, ch.index):
            if len(w.blocks) > 1:  # a single block has nothing to decide
                jobs.append((w, segmentation_task(s.book, w, ch.heading, prompt, recipe)))
    return jobs


def _take_segmentation(
    r: StageRunner,
    s: BookState,
    jobs: list[tuple[Window, Task]],
    outcomes: Sequence[Outcome],
    counter: TokenCounter,
    save: SaveFile,
) -> None:
    recipe = r.recipe
    chosen: dict[tuple[int, int], list[int]] = {}
    for (w, _), o in zip(jobs, outcomes):
        value = r.accept("segmentation", s, o)
        if value is not None:
            starts = list(value.scene_starts)
        else:
            starts = fallback_boundaries([b.tokens for b in w.blocks], recipe.budgets.atomic.goldilocks_max)
        chosen[(w.chapter_index, w.offset)] = [w.offset + x for x in starts]
    by_chapter: dict[int, list[int]] = {}
    for ch in s.book.chapters:
        chapter_starts: list[int] = []
        for w in chapter_windows(ch.blocks, recipe.segmentation.window_tokens, ch.index):
            chapter_starts.extend(chosen.get((ch.index, w.offset), [w.offset]))
        by_chapter[ch.index] = chapter_starts
    s.book.scenes = scenes_from_starts(s.book, by_chapter, counter, recipe)
    s.book.meta.total_scenes = len(s.book.scenes)
    save(
        "05_scenes.json",
        s.book_dir,
        ScenesFile(atomic_starts={str(k): v for k, v in by_chapter.items()}, scenes=s.book.scenes),
    )


def _book_flow(r: StageRunner, s: BookState, counter: TokenCounter, save: SaveFile) -> Flow:
    """One book through stages 4-7: its world context and its chapters' boundaries together (neither needs
    the other), then its summary chains with each scene's instruction, then its files."""
    recipe = r.recipe
    world = (
        [world_context_task(s.book, r.prompts["world_context"], counter, recipe)]
        if recipe.stages.world_context.enabled
        else []
    )
    jobs = _segmentation_jobs(r, s) if recipe.segmentation.method == "llm" else []
    outcomes = yield r.tag("world_context", world) + r.tag("segmentation", [t for _, t in jobs])
    if world:
        _take_world_context(r, s, outcomes[0], counter, save)
    if recipe.segmentation.method == "llm":
        _take_segmentation(r, s, jobs, outcomes[len(world) :], counter, save)
    summaries, instructions = recipe.stages.summaries.enabled, recipe.stages.instructions.enabled
    if summaries or instructions:
        yield from summaries_and_instructions(r, s, counter, save, summaries=summaries, instructions=instructions)
    apply_flags(s.book, s.flags)
    save("book.json", s.book_dir, s.book)
    save("llm_flags.json", s.book_dir, FlagsFile([LLMFlag(**f) for f in s.flags]))
    log.debug("%s: LLM stages done", s.book.meta.book_id)
    return None


_SCENE_ITEM = re.compile(r"/scene(\d+)$")
_CHAPTER_ITEM = re.compile(r"/segmentation/chapter(\d+)/")


def apply_flags(book: Book, flags: Sequence[dict[str, Any]]) -> None:
    """Mark each flag on what it concerns: a world context on the book, a summary or an instruction on its
    scene, a segmentation fallback on the scenes of its chapter (so compile can keep or drop them)."""
    book.meta.flags = []
    for sc in book.scenes:
        sc.flags = []
    by_id = {sc.scene_id: sc for sc in book.scenes}
    for f in flags:
        text = f"{f['stage']}: {f['reason']}"
        if f["stage"] == "world_context":
            book.meta.flags.append(text)
        elif (m := _SCENE_ITEM.search(f["item"])) and int(m.group(1)) in by_id:
            by_id[int(m.group(1))].flags.append(text)
        elif m := _CHAPTER_ITEM.search(f["item"]):
            for sc in book.scenes:
                if not sc.is_reference and sc.chapter_index == int(m.group(1)):
                    sc.flags.append(text)


def run_llm_stages(
    books: Sequence[tuple[Book, Path]],
    recipe: PrepRecipe,
    engine: Engine,
    counter: TokenCounter,
    run_dir: str | Path,
    *,
    progress: bool = True,
    engine_identity: str | None = None,
    write: SaveFile | None = None,
) -> LLMStageResult:
    """Run stages 4-7 over ``(book, book_dir)`` pairs and write each book's stage files and final Book JSON.

    Files per book: ``04_world_context.json``, ``05_scenes.json``, ``06_summaries.json``,
    ``07_instructions.json``, ``book.json`` (the complete Book) and ``llm_flags.json``. Returns the final
    books, per-stage statistics and the flagged items per book. The stages of different books run in the
    same engine calls, so a stage's ``wall_seconds`` is the span from its first call to its last.
    """
    run_dir = Path(run_dir)
    identity = engine_identity or (recipe.llm.identity() if recipe.llm else str(getattr(engine, "name", "engine")))
    r = StageRunner(engine, recipe, run_dir, progress=progress, engine_identity=identity)
    save = write or (lambda name, book_dir, obj: atomic_write_json(book_dir / name, obj))
    states = [BookState(book.model_copy(deep=True), Path(d)) for book, d in books]
    r.run_flows([_book_flow(r, s, counter, save) for s in states], "LLM stages")
    return LLMStageResult(
        books=[s.book for s in states],
        stats=r.stats,
        flags={s.book.meta.book_id: s.flags for s in states},
    )

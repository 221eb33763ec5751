"""Stages 4-7 scheduled over many books: world context, semantic scenes, running summaries, instructions.

The tasks are :mod:`novelcraft.prep.llm_tasks`'s; this module batches them for throughput:

* world contexts of all books in one batch;
* segmentation of every chapter (window) of every book in one batch;
* running summaries in lockstep: step *n* of every book's chain (and of its reference chain) in one batch,
  since summary *n* needs summary *n-1*;
* instructions of all scenes of all books in one batch.

Prompts put the shared prefix (system message, then the world context) first so engines with prefix
caching reuse it. Every finished answer is appended to ``<run>/llm/<stage>.jsonl`` (a
:class:`~novelcraft.runs.ResultStore`) as its round ends, so a killed run resumes where it stopped and a
finished one is reproduced without engine calls.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import NovelcraftError
from ..io import atomic_write_json
from ..llm.tasks import DebugLog, Outcome, Task, run_tasks
from ..llm.types import Engine
from ..models import Book, GlobalUpdate, Instruction, RunningSummary, Scene, SceneDigest
from ..prompts import PromptTemplate, load_prompt
from ..runs import ResultStore, StageStats, StoreGroup
from ..tokens import TokenCounter
from .llm_tasks import (
    Window,
    chapter_windows,
    digest_task,
    fallback_boundaries,
    global_task,
    instruction_task,
    scenes_from_starts,
    segmentation_task,
    summary_task,
    world_context_task,
)
from .recipe import PrepRecipe
from .stage_files import FlagsFile, InstructionsFile, LLMFlag, ScenesFile, SummariesFile, WorldContextFile

log = logging.getLogger(__name__)

STAGES = ("world_context", "segmentation", "summaries", "instructions")
#: writes one stage file: (file name, book folder, model); whatever it returns is ignored.
SaveFile = Callable[[str, Path, Any], object]
PROMPTS = (
    "world_context",
    "segmentation",
    "summary",
    "reference_summary",
    "instruction",
    "summary_digest",
    "summary_global",
)


class StageError(NovelcraftError):
    """An LLM stage could not produce a valid item (names book, stage and item)."""


@dataclasses.dataclass
class BookState:
    """One book moving through the LLM stages, and where its files go."""

    book: Book
    book_dir: Path
    flags: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    summaries: dict[int, RunningSummary] = dataclasses.field(default_factory=dict)
    instructions: dict[int, Instruction] = dataclasses.field(default_factory=dict)

    def flag(self, stage: str, item: str, reason: str) -> None:
        """Record an item kept over budget or replaced by a fallback."""
        self.flags.append({"stage": stage, "item": item, "reason": reason})


@dataclasses.dataclass
class LLMStageResult:
    """What stages 4-7 produced: the final books, per-stage statistics and the flagged items per book id."""

    books: list[Book]
    stats: dict[str, StageStats]
    flags: dict[str, list[dict[str, Any]]]


class _Ticker:
    """Refreshes a progress bar every few seconds while one long engine call runs: elapsed time moves."""

    def __init__(self, bar: Any, every: float = 5.0) -> None:
        self.bar, self.every = bar, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.bar.refresh()

    def __enter__(self) -> _Ticker:
        if not getattr(self.bar, "disable", False):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


class StageRunner:
    """Runs one stage's tasks through the engine with the recipe's retries, store, debug log and stats."""

    def __init__(
        self, engine: Engine, recipe: PrepRecipe, run_dir: Path, *, progress: bool, engine_identity: str
    ) -> None:
        self.engine = engine
        self.recipe = recipe
        self.llm_dir = run_dir / "llm"
        self.progress = progress
        self.identity = engine_identity
        self.stats: dict[str, StageStats] = {s: StageStats() for s in STAGES}
        debug_on = bool(recipe.llm and recipe.llm.debug_log)
        self.debug = DebugLog(run_dir / "llm_debug.jsonl" if debug_on else None)
        self.prompts = {n: load_prompt(n, recipe.stages.prompts_dir) for n in PROMPTS}

    def run(self, stage: str, tasks: list[Task], desc: str) -> list[Outcome]:
        """Run ``tasks`` of ``stage`` with its result store, progress bar, statistics and debug log."""
        return self.run_joint([(stage, tasks)], desc)[0]

    def run_joint(
        self, parts: list[tuple[str, list[Task]]], desc: str, order: list[Task] | None = None
    ) -> list[list[Outcome]]:
        """Run the tasks of several stages in the same engine calls (each stage keeps its store and
        statistics): a scene's summary and instruction share a prompt prefix, so the second is served from
        the prefix cache. ``order`` sends the tasks in that order (neighbours share the cache best).
        Returns each part's outcomes in order."""
        from tqdm.auto import tqdm

        tasks = order if order is not None else [t for _, ts in parts for t in ts]
        if not tasks:
            return [[] for _ in parts]
        stage_of = {t.key: stage for stage, ts in parts for t in ts}
        stores = {stage: ResultStore(self.llm_dir / f"{stage}.jsonl") for stage, _ in parts}
        store = StoreGroup(stores, lambda key: stage_of[key])
        bar = tqdm(total=len(tasks), desc=desc, unit="req", disable=not self.progress, leave=False)
        salt = "|".join(p.digest for p in self.prompts.values())
        t0 = time.perf_counter()
        produced = [0]

        def on_round(round_no: int, pending: int) -> None:
            if round_no > 1:
                bar.total += pending  # retries and compressions: more requests
            bar.set_postfix(round=round_no, refresh=False)
            bar.refresh()

        def on_chunk(requests: int, completion_tokens: int) -> None:
            produced[0] += completion_tokens
            rate = produced[0] / max(1e-6, time.perf_counter() - t0)
            bar.update(requests)
            bar.set_postfix_str(f"{rate:.0f} tok/s", refresh=True)

        try:
            retry = self.recipe.llm.retry if self.recipe.llm else None
            with _Ticker(bar):
                outcomes = run_tasks(
                    self.engine,
                    tasks,
                    attempts=self.recipe.stages.attempts,
                    transport_attempts=retry.attempts if retry else 3,
                    backoff_s=retry.backoff_s if retry else 1.0,
                    max_backoff_s=retry.max_backoff_s if retry else 30.0,
                    store=store,
                    salt=salt,
                    engine_identity=self.identity,
                    stats=lambda t: self.stats[stage_of[t.key]],
                    debug=self.debug,
                    chunk_size=self.recipe.stages.chunk_size,
                    on_round=on_round,
                    on_chunk=on_chunk,
                )
        except NovelcraftError as exc:
            names = "+".join(stage for stage, _ in parts)
            raise StageError(f"stage {names}: {exc.cause}", step=names) from None
        finally:
            bar.close()
        by_key = {o.key: o for o in outcomes}
        return [[by_key[t.key] for t in ts] for _, ts in parts]

    def accept(self, stage: str, state: BookState, outcome: Outcome) -> Any:
        """The outcome's value (flag noted), or None for an item that stayed invalid: that stops the run
        (``on_failure: error``) or is flagged, and the caller falls back."""
        if outcome.value is None:
            if self.recipe.stages.on_failure == "error":
                raise StageError(
                    f"stage {stage}: {outcome.key}: no valid answer after {outcome.attempts} attempts: {outcome.error}",
                    step=stage,
                )
            log.warning("%s: %s: falling back (%s)", stage, outcome.key, outcome.error)
            state.flag(stage, outcome.key, outcome.error or "invalid")
            return None
        if outcome.flagged:
            state.flag(stage, outcome.key, outcome.flag_reason or "flagged")
        return outcome.value


def _world_contexts(r: StageRunner, states: list[BookState], counter: TokenCounter, save: SaveFile) -> None:
    prompt = r.prompts["world_context"]
    tasks = [world_context_task(s.book, prompt, counter, r.recipe) for s in states]
    for s, o in zip(states, r.run("world_context", tasks, "world context")):
        value = r.accept("world_context", s, o)
        if value is None:
            continue
        s.book.meta.world_context = value.render()
        save(
            "04_world_context.json",
            s.book_dir,
            WorldContextFile(
                world_context=value,
                rendered=s.book.meta.world_context,
                tokens=counter.count(s.book.meta.world_context),
                flagged=o.flagged,
                flag_reason=o.flag_reason,
            ),
        )


def _segmentation(r: StageRunner, states: list[BookState], counter: TokenCounter, save: SaveFile) -> None:
    recipe = r.recipe
    prompt = r.prompts["segmentation"]
    jobs: list[tuple[BookState, Window, Task]] = []
    for s in states:
        for ch in s.book.chapters:
            for w in chapter_windows(ch.blocks, recipe.segmentation.window_tokens, ch.index):
                if len(w.blocks) == 1:
                    continue  # nothing to decide
                jobs.append((s, w, segmentation_task(s.book, w, ch.heading, prompt, recipe)))
    outcomes = r.run("segmentation", [t for _, _, t in jobs], "segmentation")
    chosen: dict[tuple[int, int, int], list[int]] = {}
    for (s, w, _), o in zip(jobs, outcomes):
        value = r.accept("segmentation", s, o)
        if value is not None:
            starts = list(value.scene_starts)
        else:
            starts = fallback_boundaries([b.tokens for b in w.blocks], recipe.budgets.atomic.goldilocks_max)
        chosen[(id(s), w.chapter_index, w.offset)] = [w.offset + x for x in starts]
    for s in states:
        by_chapter: dict[int, list[int]] = {}
        for ch in s.book.chapters:
            chapter_starts: list[int] = []
            for w in chapter_windows(ch.blocks, recipe.segmentation.window_tokens, ch.index):
                chapter_starts.extend(chosen.get((id(s), ch.index, w.offset), [w.offset]))
            by_chapter[ch.index] = chapter_starts
        s.book.scenes = scenes_from_starts(s.book, by_chapter, counter, recipe)
        s.book.meta.total_scenes = len(s.book.scenes)
        save(
            "05_scenes.json",
            s.book_dir,
            ScenesFile(atomic_starts={str(k): v for k, v in by_chapter.items()}, scenes=s.book.scenes),
        )


def _summaries_and_instructions(
    r: StageRunner,
    states: list[BookState],
    counter: TokenCounter,
    save: SaveFile,
    *,
    summaries: bool,
    instructions: bool,
) -> None:
    """Lockstep over every chain (narrative and reference, per book): step n of all chains in one batch -
    the summary after scene n (it needs summary n-1) and scene n's instruction, whose prompt shares the
    summary's prefix (system, world context, scene), in the same engine calls."""
    chains: list[tuple[BookState, list[Scene], PromptTemplate]] = []
    for s in states:
        narrative = [sc for sc in s.book.scenes if not sc.is_reference]
        reference = [sc for sc in s.book.scenes if sc.is_reference]
        if narrative:
            chains.append((s, narrative, r.prompts["summary"]))
        if reference:
            chains.append((s, reference, r.prompts["reference_summary"]))
    previous: dict[int, RunningSummary | None] = {i: None for i in range(len(chains))}
    steps = max((len(c[1]) for c in chains), default=0)
    instruction_prompt = r.prompts["instruction"]
    digests: dict[tuple[int, int], SceneDigest] = {}
    if summaries and r.recipe.stages.summaries.mode == "digest":
        digests = _digest_round(r, chains, counter, instructions=instructions)
        instructions = False  # done in the digest round, beside the digests (their prompts share the prefix)

    def summary_of(i: int, c: tuple[BookState, list[Scene], PromptTemplate], step: int) -> Task:
        s, scenes, prompt = c
        if (i, step) in digests:
            return global_task(
                s.book,
                scenes[step],
                digests[(i, step)],
                step,
                len(scenes),
                previous[i],
                r.prompts["summary_global"],
                counter,
                r.recipe,
            )
        return summary_task(s.book, scenes[step], step, len(scenes), previous[i], prompt, counter, r.recipe)

    for step in range(steps):
        live = [(i, c) for i, c in enumerate(chains) if step < len(c[1])]
        summary_tasks = [summary_of(i, c, step) for i, c in live] if summaries else []
        instruction_tasks = (
            [instruction_task(c[0].book, c[1][step], instruction_prompt, counter, r.recipe) for _, c in live]
            if instructions
            else []
        )
        # each scene's summary then its instruction: neighbours in the batch, so the shared prefix is reused
        order = [t for pair in zip(summary_tasks, instruction_tasks) for t in pair] or summary_tasks + instruction_tasks
        parts = [("summaries", summary_tasks), ("instructions", instruction_tasks)]
        done = r.run_joint([(name, ts) for name, ts in parts if ts], f"scenes {step + 1}/{steps}", order=order)
        by_stage = dict(zip([name for name, ts in parts if ts], done))
        for (i, (s, scenes, _)), o in zip(live, by_stage.get("summaries", [])):
            # a summary that stayed invalid carries the previous one forward (none yet: the scene has none)
            value = r.accept("summaries", s, o)
            if isinstance(value, GlobalUpdate):
                value = value.with_digest(digests[(i, step)])
            value = value or previous[i]
            if value is None:
                continue
            previous[i] = value
            s.summaries[scenes[step].scene_id] = value
        for (_, (s, scenes, _)), o in zip(live, by_stage.get("instructions", [])):
            value = r.accept("instructions", s, o)
            if value is not None:
                s.instructions[scenes[step].scene_id] = value
    for s in states:
        for sc in s.book.scenes:
            if sc.scene_id in s.summaries:
                sc.running_summary = s.summaries[sc.scene_id].render()
            if sc.scene_id in s.instructions:
                sc.instruction = s.instructions[sc.scene_id].render()
        if summaries:
            save("06_summaries.json", s.book_dir, SummariesFile({str(k): v for k, v in sorted(s.summaries.items())}))
        if instructions:
            save(
                "07_instructions.json",
                s.book_dir,
                InstructionsFile({str(k): v for k, v in sorted(s.instructions.items())}),
            )


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


def _digest_round(
    r: StageRunner,
    chains: list[tuple[BookState, list[Scene], PromptTemplate]],
    counter: TokenCounter,
    *,
    instructions: bool,
) -> dict[tuple[int, int], SceneDigest]:
    """Digest mode: every narrative scene's digest (and, with ``instructions``, every scene's instruction
    beside it) in one round; returns the digests by (chain, position). A scene whose digest stayed invalid
    is summarised directly instead."""
    digest_prompt, instruction_prompt = r.prompts["summary_digest"], r.prompts["instruction"]
    jobs: list[tuple[int, int, BookState, Scene]] = [
        (i, k, s, sc) for i, (s, scenes, _) in enumerate(chains) for k, sc in enumerate(scenes)
    ]
    digest_jobs = [(i, k, s, sc) for i, k, s, sc in jobs if not sc.is_reference]
    digest_tasks = [digest_task(s.book, sc, digest_prompt, r.recipe) for _, _, s, sc in digest_jobs]
    instruction_tasks = (
        [instruction_task(s.book, sc, instruction_prompt, counter, r.recipe) for _, _, s, sc in jobs]
        if instructions
        else []
    )
    by_key = {t.key: t for t in instruction_tasks}
    order: list[Task] = []
    for (_, _, s, sc), t in zip(digest_jobs, digest_tasks):
        order.append(t)
        twin = by_key.pop(f"{s.book.meta.book_id}/instruction/scene{sc.scene_id}", None)
        if twin is not None:
            order.append(twin)
    order += list(by_key.values())  # reference scenes' instructions
    parts = [("summaries", digest_tasks), ("instructions", instruction_tasks)]
    done = dict(zip(["summaries", "instructions"], r.run_joint(parts, "scene digests", order=order)))
    digests: dict[tuple[int, int], SceneDigest] = {}
    for (i, k, s, _), o in zip(digest_jobs, done["summaries"]):
        if o.value is not None:
            digests[(i, k)] = o.value
            if o.flagged:
                s.flag("summaries", o.key, o.flag_reason or "flagged")
    for (_, _, s, sc), o in zip(jobs, done["instructions"]):
        value = r.accept("instructions", s, o)
        if value is not None:
            s.instructions[sc.scene_id] = value
    return digests


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
    books, per-stage statistics (``wall_seconds`` included) and the flagged items per book.
    """
    run_dir = Path(run_dir)
    identity = engine_identity or (recipe.llm.identity() if recipe.llm else str(getattr(engine, "name", "engine")))
    r = StageRunner(engine, recipe, run_dir, progress=progress, engine_identity=identity)
    save = write or (lambda name, book_dir, obj: atomic_write_json(book_dir / name, obj))
    states = [BookState(book.model_copy(deep=True), Path(d)) for book, d in books]
    plan = [
        ("world_context", recipe.stages.world_context.enabled, _world_contexts),
        ("segmentation", recipe.segmentation.method == "llm", _segmentation),
    ]
    for name, enabled, stage in plan:
        t0 = time.perf_counter()
        if enabled:
            stage(r, states, counter, save)
        r.stats[name].wall_seconds = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    summaries, instructions = recipe.stages.summaries.enabled, recipe.stages.instructions.enabled
    if summaries or instructions:
        _summaries_and_instructions(r, states, counter, save, summaries=summaries, instructions=instructions)
    # the two run in the same steps: each stage's wall time is the steps' (their calls and tokens are their own)
    for name in ("summaries", "instructions"):
        r.stats[name].wall_seconds = round(time.perf_counter() - t0, 3)
    for s in states:
        apply_flags(s.book, s.flags)
        save("book.json", s.book_dir, s.book)
        save("llm_flags.json", s.book_dir, FlagsFile([LLMFlag(**f) for f in s.flags]))
    return LLMStageResult(
        books=[s.book for s in states],
        stats=r.stats,
        flags={s.book.meta.book_id: s.flags for s in states},
    )

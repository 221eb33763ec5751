"""Stages 4-7 with an LLM: world context, semantic scenes, running summaries, scene instructions.

The request builders and gates are pure functions over Book records; :func:`run_llm_stages` schedules
them over many books for throughput:

* world contexts of all books in one batch;
* segmentation of every chapter (window) of every book in one batch;
* running summaries in lockstep: step *n* of every book's chain (and of its reference chain) in one batch,
  since summary *n* needs summary *n-1*;
* instructions of all scenes of all books in one batch.

Prompts put the shared prefix (system message, then the world context) first so engines with prefix
caching reuse it. Every finished answer is appended to ``<run>/llm/<stage>.jsonl`` as its round ends, so
a killed run resumes where it stopped and a finished one is reproduced without engine calls.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from pathlib import Path
from typing import Annotated, Any, Callable, Sequence

from pydantic import Field, create_model

from .blocks import apply_boundaries, merge_scenes_counted, validate_boundaries
from .book import scene_from_blocks
from .errors import NovelcraftError
from .io import atomic_write_json
from .llm.engine import Engine
from .llm.structured import CallStats, DebugLog, Outcome, ResultStore, Task, Verdict, run_tasks, token_budget_gate
from .models import Block, Book, Instruction, RunningSummary, Scene, SceneBoundaries
from .prompts import PromptTemplate, field_guide, load_prompt
from .recipes import PrepRecipe
from .tokens import TokenCounter

log = logging.getLogger(__name__)

STAGES = ("world_context", "segmentation", "summaries", "instructions")


class StageError(NovelcraftError):
    """An LLM stage could not produce a valid item (names book, stage and item)."""


def _progress_percent(index: int, total: int) -> int:
    """NOVEL PROGRESS of the summary written after ``index`` (0-based) of ``total`` scenes."""
    return round(100 * (index + 1) / total) if total else 100


def summary_progress(scene_index: int, total: int) -> int:
    """NOVEL PROGRESS shown with the summary that precedes scene ``scene_index`` (0-based): done / total."""
    return round(100 * scene_index / total) if total else 0


# --------------------------------------------------------------------------- stage 4: world context


def world_context_excerpts(book: Book, counter: TokenCounter, input_tokens: int) -> str:
    """Openings of chapters spread evenly over the book, within ``input_tokens`` in all."""
    chapters = [c for c in book.chapters if c.blocks]
    if not chapters:
        return ""
    per = max(150, input_tokens // len(chapters))
    take = max(1, min(len(chapters), input_tokens // per))
    step = len(chapters) / take
    picked = [chapters[int(i * step)] for i in range(take)]
    parts = []
    for ch in picked:
        text, used = [], 0
        for b in ch.blocks:
            if used + b.tokens > per:
                if not text:  # a long first block: keep its first words
                    words = b.text.split()
                    text.append(" ".join(words[: max(20, int(per / max(1.0, b.tokens / max(1, len(words)))))]) + " …")
                break
            text.append(b.text)
            used += b.tokens
        parts.append(f"## {ch.heading.lstrip('# ').strip()}\n\n" + "\n\n".join(text))
    return "\n\n".join(parts)


def world_context_task(book: Book, prompt: PromptTemplate, counter: TokenCounter, recipe: PrepRecipe) -> Task:
    cfg = recipe.stages.world_context
    budget = recipe.budgets.record.world_context
    values = dict(
        title=book.meta.title,
        author=book.meta.author,
        field_guide=field_guide(prompt.schema),
        excerpts=world_context_excerpts(book, counter, cfg.input_tokens),
        budget_tokens=budget,
    )

    return Task(
        key=f"{book.meta.book_id}/world_context",
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=cfg.max_tokens,
        gate=token_budget_gate(counter.count, budget, "world context"),
        feedback=prompt.feedback(**values),
        compress_attempts=cfg.compress_attempts,
    )


# --------------------------------------------------------------------------- stage 5: semantic scenes


@dataclasses.dataclass(frozen=True)
class Window:
    """Consecutive blocks of one chapter segmented by one call; ``offset`` is the first block's index."""

    chapter_index: int
    offset: int
    blocks: tuple[Block, ...]


def chapter_windows(blocks: Sequence[Block], window_tokens: int, chapter_index: int) -> list[Window]:
    """Cut a chapter's blocks into windows of at most ``window_tokens`` (a window holds >= 1 block)."""
    windows: list[Window] = []
    cur: list[Block] = []
    used = 0
    for b in blocks:
        if cur and used + b.tokens > window_tokens:
            windows.append(Window(chapter_index, cur[0].index, tuple(cur)))
            cur, used = [], 0
        cur.append(b)
        used += b.tokens
    if cur:
        windows.append(Window(chapter_index, cur[0].index, tuple(cur)))
    return windows


def annotate_blocks(blocks: Sequence[Block]) -> str:
    """Blocks numbered from 0 with their token counts, as the segmentation prompt shows them."""
    return "\n\n".join(f"[BLOCK {i} | {b.tokens} tokens]\n{b.text}" for i, b in enumerate(blocks))


def check_boundaries(starts: Sequence[int], tokens: Sequence[int], max_tokens: int) -> str | None:
    """Why ``starts`` is not a valid segmentation of blocks with these token counts (None when valid).

    Gates: starts at 0, strictly increasing, in range (so the scenes cover every block exactly once), and
    no atomic scene of several blocks over ``max_tokens``.
    """
    try:
        validate_boundaries(len(tokens), list(starts))
    except ValueError as exc:
        return str(exc)
    ends = list(starts[1:]) + [len(tokens)]
    for a, b in zip(starts, ends):
        size = sum(tokens[a:b])
        if b - a > 1 and size > max_tokens:
            return (
                f"the scene of blocks {a}-{b - 1} has {size} tokens, over the {max_tokens}-token limit; "
                "add a boundary inside it"
            )
    return None


def fallback_boundaries(tokens: Sequence[int], target: int) -> list[int]:
    """Size-based cuts: start a new scene when the next block would pass ``target`` tokens."""
    starts, used = [0], 0
    for i, t in enumerate(tokens):
        if i and used + t > target:
            starts.append(i)
            used = 0
        used += t
    return starts


@functools.lru_cache(maxsize=None)
def boundaries_schema(n_blocks: int, base: type[SceneBoundaries] = SceneBoundaries) -> type[SceneBoundaries]:
    """``base`` narrowed to one window: at most ``n_blocks`` starts, each in 0..n_blocks-1.

    Constrained decoding then cannot produce out-of-range or runaway lists; ordering is left to the gate.
    """
    item = Annotated[int, Field(ge=0, le=max(0, n_blocks - 1))]
    return create_model(
        base.__name__,
        __base__=base,
        scene_starts=(list[item], Field(..., min_length=1, max_length=max(1, n_blocks))),  # type: ignore[valid-type]
    )


def segmentation_task(book: Book, window: Window, chapter_heading: str, prompt: PromptTemplate, recipe: PrepRecipe) -> Task:
    atomic = recipe.budgets.atomic
    tokens = [b.tokens for b in window.blocks]
    n = len(window.blocks)
    values = dict(
        title=book.meta.title,
        chapter=f"{chapter_heading.lstrip('# ').strip()}" + (f" (blocks {window.offset}+)" if window.offset else ""),
        blocks=annotate_blocks(window.blocks),
        n_blocks=n,
        last_block=n - 1,
        atomic_min=atomic.min_tokens,
        atomic_max=atomic.max_tokens,
        goldilocks_min=atomic.goldilocks_min,
        goldilocks_max=atomic.goldilocks_max,
    )

    def gate(value: Any) -> Verdict:
        problem = check_boundaries(value.scene_starts, tokens, atomic.max_tokens)
        return Verdict.ok() if problem is None else Verdict.retry(problem)

    return Task(
        key=f"{book.meta.book_id}/segmentation/chapter{window.chapter_index}/block{window.offset}",
        messages=prompt.messages(**values),
        schema=boundaries_schema(n, prompt.schema),
        max_tokens=recipe.segmentation.max_tokens,
        gate=gate,
        feedback=prompt.feedback(**values),
        compress_attempts=0,
    )


def scenes_from_starts(
    book: Book, starts_by_chapter: dict[int, list[int]], counter: TokenCounter, recipe: PrepRecipe
) -> list[Scene]:
    """Narrative scenes (atomic scenes greedily merged to ``scene.hard_max``) then the book's reference scenes."""
    scenes: list[Scene] = []
    for ch in book.chapters:
        if not ch.blocks:
            continue
        atomic = apply_boundaries(ch.blocks, starts_by_chapter[ch.index])
        for group, ntok in merge_scenes_counted(atomic, counter, max_tokens=recipe.budgets.scene.hard_max):
            scenes.append(scene_from_blocks(len(scenes) + 1, group, ntok, ch.index, ch.title))
    for s in book.scenes:
        if s.is_reference:
            scenes.append(s.model_copy(update={"scene_id": len(scenes) + 1}))
    return scenes


# --------------------------------------------------------------------------- stage 6: running summaries


def make_summary_task(
    key: str,
    *,
    world_context: str | None,
    scene_text: str,
    position: int,
    total: int,
    previous: RunningSummary | None,
    prompt: PromptTemplate,
    counter: TokenCounter,
    budget_tokens: int,
    max_tokens: int,
    compress_attempts: int,
    section: str = "reference",
) -> Task:
    """The task "running summary after this scene" (``position`` 0-based of ``total`` scenes in the chain).

    The prompt holds the world context, the previous summary headed ``NOVEL PROGRESS: XX%`` (done /
    total before this scene) and the scene; the gate compresses while the summary rendered with the
    progress after this scene is over ``budget_tokens``. Data prep and novel generation share it.
    """
    progress_after = _progress_percent(position, total)
    previous_block = (
        prompt.render("previous", previous=previous.render(summary_progress(position, total)))
        if previous is not None
        else prompt.render("previous_first")
    )
    values = dict(
        world_context=world_context or "(no world context)",
        previous_block=previous_block,
        scene=scene_text,
        section=section,
        field_guide=field_guide(prompt.schema),
        budget_tokens=budget_tokens,
    )

    return Task(
        key=key,
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=max_tokens,
        gate=token_budget_gate(counter.count, budget_tokens, "summary", lambda v: v.render(progress_after)),
        feedback=prompt.feedback(**values),
        compress_attempts=compress_attempts,
    )


def summary_task(
    book: Book,
    scene: Scene,
    position: int,
    total: int,
    previous: RunningSummary | None,
    prompt: PromptTemplate,
    counter: TokenCounter,
    recipe: PrepRecipe,
) -> Task:
    """The summary after ``scene`` of ``book`` (see :func:`make_summary_task`)."""
    cfg = recipe.stages.summaries
    kind = "reference" if scene.is_reference else "narrative"
    return make_summary_task(
        f"{book.meta.book_id}/summary/{kind}/scene{scene.scene_id}",
        world_context=book.meta.world_context,
        scene_text=scene.text,
        position=position,
        total=total,
        previous=previous,
        prompt=prompt,
        counter=counter,
        budget_tokens=recipe.budgets.record.running_summary,
        max_tokens=cfg.max_tokens,
        compress_attempts=cfg.compress_attempts,
        section=scene.chapter_title or "reference",
    )


# --------------------------------------------------------------------------- stage 7: instructions


def instruction_task(book: Book, scene: Scene, prompt: PromptTemplate, recipe: PrepRecipe) -> Task:
    cfg = recipe.stages.instructions
    values = dict(
        world_context=book.meta.world_context or "(no world context)",
        scene=scene.text,
        field_guide=field_guide(prompt.schema),
    )
    return Task(
        key=f"{book.meta.book_id}/instruction/scene{scene.scene_id}",
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=cfg.max_tokens,
        feedback=prompt.feedback(**values),
        compress_attempts=cfg.compress_attempts,
    )


# --------------------------------------------------------------------------- scheduling


@dataclasses.dataclass
class BookState:
    """One book moving through the LLM stages, and where its files go."""

    book: Book
    book_dir: Path
    flags: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    summaries: dict[int, RunningSummary] = dataclasses.field(default_factory=dict)
    instructions: dict[int, Instruction] = dataclasses.field(default_factory=dict)

    def flag(self, stage: str, item: str, reason: str) -> None:
        self.flags.append({"stage": stage, "item": item, "reason": reason})


@dataclasses.dataclass
class LLMStageResult:
    books: list[Book]
    stats: dict[str, dict[str, Any]]
    flags: dict[str, list[dict[str, Any]]]


class _Runner:
    def __init__(
        self,
        engine: Engine,
        recipe: PrepRecipe,
        counter: TokenCounter,
        run_dir: Path,
        *,
        progress: bool,
        engine_identity: str,
    ) -> None:
        self.engine = engine
        self.recipe = recipe
        self.counter = counter
        self.llm_dir = run_dir / "llm"
        self.progress = progress
        self.identity = engine_identity
        self.stats: dict[str, CallStats] = {s: CallStats() for s in STAGES}
        debug_on = bool(recipe.llm and recipe.llm.debug_log)
        self.debug = DebugLog(run_dir / "llm_debug.jsonl" if debug_on else None)
        self.prompts = {n: load_prompt(n, recipe.stages.prompts_dir) for n in
                        ("world_context", "segmentation", "summary", "reference_summary", "instruction")}

    def run(self, stage: str, tasks: list[Task], desc: str) -> list[Outcome]:
        from tqdm.auto import tqdm

        if not tasks:
            return []
        store = ResultStore(self.llm_dir / f"{stage}.jsonl")
        bar = tqdm(total=len(tasks), desc=desc, unit="item", disable=not self.progress, leave=False)
        salt = "|".join(p.digest for p in self.prompts.values())

        def on_round(round_no: int, pending: int) -> None:
            bar.n = len(tasks) - pending
            bar.set_postfix(round=round_no)
            bar.refresh()

        try:
            retry = self.recipe.llm.retry if self.recipe.llm else None
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
                stats=self.stats[stage],
                debug=self.debug,
                chunk_size=self.recipe.stages.chunk_size,
                on_round=on_round,
            )
        except NovelcraftError as exc:
            raise StageError(f"stage {stage}: {exc.cause}", step=stage) from None
        finally:
            bar.n = bar.total
            bar.close()
        return outcomes

    def failed(self, stage: str, outcome: Outcome) -> None:
        """An item that stayed invalid: error, or (on_failure: flag) let the caller fall back."""
        if self.recipe.stages.on_failure == "error":
            raise StageError(
                f"stage {stage}: {outcome.key}: no valid answer after {outcome.attempts} attempts: {outcome.error}",
                step=stage,
            )
        log.warning("%s: %s: falling back (%s)", stage, outcome.key, outcome.error)


def run_llm_stages(
    books: Sequence[tuple[Book, Path]],
    recipe: PrepRecipe,
    engine: Engine,
    counter: TokenCounter,
    run_dir: str | Path,
    *,
    progress: bool = True,
    engine_identity: str | None = None,
    write: Callable[[str, Path, Any], None] | None = None,
) -> LLMStageResult:
    """Run stages 4-7 over ``(book, book_dir)`` pairs and write each book's stage files and final Book JSON.

    Files per book: ``04_world_context.json``, ``05_scenes.json``, ``06_summaries.json``,
    ``07_instructions.json`` and ``book.json`` (the complete Book). Returns the final books, per-stage
    call statistics and the flagged items.
    """
    run_dir = Path(run_dir)
    identity = engine_identity or (recipe.llm.identity() if recipe.llm else getattr(engine, "name", "engine"))
    r = _Runner(engine, recipe, counter, run_dir, progress=progress, engine_identity=identity)
    save = write or (lambda name, book_dir, obj: atomic_write_json(book_dir / name, obj))
    states = [BookState(book.model_copy(deep=True), Path(d)) for book, d in books]
    timings: dict[str, float] = {}

    # Stage 4: world context.
    t0 = time.perf_counter()
    if recipe.stages.world_context.enabled:
        prompt = r.prompts["world_context"]
        outcomes = r.run("world_context", [world_context_task(s.book, prompt, counter, recipe) for s in states], "world context")
        for s, o in zip(states, outcomes):
            if o.value is None:
                r.failed("world_context", o)
                s.flag("world_context", o.key, o.error or "invalid")
                continue
            if o.flagged:
                s.flag("world_context", o.key, o.flag_reason or "flagged")
            s.book.meta.world_context = o.value.render()
            save("04_world_context.json", s.book_dir, {"world_context": o.value.model_dump(), "rendered": s.book.meta.world_context,
                                                     "tokens": counter.count(s.book.meta.world_context), "flagged": o.flagged,
                                                     "flag_reason": o.flag_reason})
    timings["world_context"] = time.perf_counter() - t0

    # Stage 5: semantic scenes.
    t0 = time.perf_counter()
    if recipe.segmentation.method == "llm":
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
            if o.value is not None:
                starts = list(o.value.scene_starts)
            else:
                r.failed("segmentation", o)
                s.flag("segmentation", o.key, o.error or "invalid")
                starts = fallback_boundaries([b.tokens for b in w.blocks], recipe.budgets.atomic.goldilocks_max)
            chosen[(id(s), w.chapter_index, w.offset)] = [w.offset + x for x in starts]
        for s in states:
            by_chapter: dict[int, list[int]] = {}
            for ch in s.book.chapters:
                starts: list[int] = []
                for w in chapter_windows(ch.blocks, recipe.segmentation.window_tokens, ch.index):
                    starts.extend(chosen.get((id(s), ch.index, w.offset), [w.offset]))
                by_chapter[ch.index] = starts
            s.book.scenes = scenes_from_starts(s.book, by_chapter, counter, recipe)
            s.book.meta.total_scenes = len(s.book.scenes)
            save("05_scenes.json", s.book_dir, {"atomic_starts": {str(k): v for k, v in by_chapter.items()},
                                               "scenes": [sc.model_dump() for sc in s.book.scenes]})
    timings["segmentation"] = time.perf_counter() - t0

    # Stage 6: running summaries, in lockstep over every chain (narrative and reference, per book).
    t0 = time.perf_counter()
    if recipe.stages.summaries.enabled:
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
        for step in range(steps):
            live = [(i, c) for i, c in enumerate(chains) if step < len(c[1])]
            tasks = [
                summary_task(c[0].book, c[1][step], step, len(c[1]), previous[i], c[2], counter, recipe) for i, c in live
            ]
            outcomes = r.run("summaries", tasks, f"summaries {step + 1}/{steps}")
            for (i, (s, scenes, _)), o in zip(live, outcomes):
                scene = scenes[step]
                if o.value is None:
                    r.failed("summaries", o)
                    s.flag("summaries", o.key, o.error or "invalid")
                    if previous[i] is None:
                        continue
                    value = previous[i]
                else:
                    value = o.value
                    if o.flagged:
                        s.flag("summaries", o.key, o.flag_reason or "flagged")
                previous[i] = value
                s.summaries[scene.scene_id] = value
        for s in states:
            for sc in s.book.scenes:
                if sc.scene_id in s.summaries:
                    sc.running_summary = s.summaries[sc.scene_id].render()
            save("06_summaries.json", s.book_dir, {str(k): v.model_dump() for k, v in sorted(s.summaries.items())})
    timings["summaries"] = time.perf_counter() - t0

    # Stage 7: instructions, all scenes of all books at once.
    t0 = time.perf_counter()
    if recipe.stages.instructions.enabled:
        prompt = r.prompts["instruction"]
        jobs2 = [(s, sc) for s in states for sc in s.book.scenes]
        outcomes = r.run("instructions", [instruction_task(s.book, sc, prompt, recipe) for s, sc in jobs2], "instructions")
        for (s, sc), o in zip(jobs2, outcomes):
            if o.value is None:
                r.failed("instructions", o)
                s.flag("instructions", o.key, o.error or "invalid")
                continue
            if o.flagged:
                s.flag("instructions", o.key, o.flag_reason or "flagged")
            s.instructions[sc.scene_id] = o.value
            sc.instruction = o.value.render()
        for s in states:
            save("07_instructions.json", s.book_dir, {str(k): v.model_dump() for k, v in sorted(s.instructions.items())})
    timings["instructions"] = time.perf_counter() - t0

    for s in states:
        save("book.json", s.book_dir, s.book)
        save("llm_flags.json", s.book_dir, s.flags)
    stats = {}
    for name, st in r.stats.items():
        d = st.as_dict()
        d["wall_seconds"] = round(timings.get(name, 0.0), 3)
        stats[name] = d
    return LLMStageResult(
        books=[s.book for s in states],
        stats=stats,
        flags={s.book.meta.book_id: s.flags for s in states},
    )

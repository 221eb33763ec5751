"""The LLM tasks of data prep, as pure functions over Book records (stages 4, 5, 6 and 7).

* stage 4 — :func:`world_context_task`: chapter openings spread over the book -> a :class:`WorldContext`;
* stage 5 — :func:`segmentation_task`: one window of a chapter's numbered blocks -> atomic scene starts,
  checked by :func:`check_boundaries` (size-based :func:`fallback_boundaries` when no answer passes);
* stage 6 — :func:`summary_task`: the shared running-summary task (:mod:`novelcraft.memory`) for one scene;
* stage 7 — :func:`instruction_task`: a scene back-translated into its :class:`Instruction`.

Scheduling, resume and files are :mod:`novelcraft.prep.llm_run`'s.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, create_model

from ..gates import (
    entities_problem,
    gate_chain,
    grounded_problem,
    keep_latest,
    listed_names,
    min_words_problem,
    plain_prose_problem,
    prose_fields,
)
from ..llm.answers import Verdict, answer_max_tokens, token_budget_gate
from ..llm.tasks import Task
from ..memory import make_summary_task, summary_progress_after, summary_progress_before
from ..models import Block, Book, RunningSummary, Scene, SceneBoundaries, SceneDigest
from ..prompts import PromptTemplate, field_guide
from ..tokens import TokenCounter
from .blocks import apply_boundaries, merge_scenes_counted, validate_boundaries
from .book import scene_from_blocks
from .recipe import PrepRecipe

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
        text: list[str] = []
        used = 0
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
    """The stage-4 task of ``book``: excerpts in, a :class:`WorldContext` within its token budget out."""
    cfg = recipe.stages.world_context
    budget = recipe.budgets.record.world_context
    excerpts = world_context_excerpts(book, counter, cfg.input_tokens)
    values = dict(
        title=book.meta.title,
        author=book.meta.author,
        field_guide=field_guide(prompt.schema),
        excerpts=excerpts,
        budget_tokens=budget,
    )
    gate = gate_chain(
        lambda v: plain_prose_problem(prose_fields(v)),
        lambda v: min_words_problem(prose_fields(v), cfg.min_field_words),
        lambda v: entities_problem(v.render(), excerpts, cfg.min_entities),
        budget=token_budget_gate(counter.count, budget, "world context"),
    )
    return Task(
        key=f"{book.meta.book_id}/world_context",
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=answer_max_tokens(cfg.max_tokens, prompt.schema),
        gate=gate,
        feedback=prompt.feedback(**values),
        compress_attempts=cfg.compress_attempts,
        keep_best=keep_latest,
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


@functools.cache
def boundaries_schema(n_blocks: int, base: type[SceneBoundaries] = SceneBoundaries) -> type[SceneBoundaries]:
    """``base`` narrowed to one window: at most ``n_blocks`` starts, each in 0..n_blocks-1.

    Constrained decoding then cannot produce out-of-range or runaway lists; ordering is left to the gate.
    """
    item = Annotated[int, Field(ge=0, le=max(0, n_blocks - 1))]
    return create_model(
        base.__name__,
        __base__=base,
        scene_starts=(list[item], Field(..., min_length=1, max_length=max(1, n_blocks))),
    )


def segmentation_task(
    book: Book, window: Window, chapter_heading: str, prompt: PromptTemplate, recipe: PrepRecipe
) -> Task:
    """The stage-5 task of one window of blocks: where its atomic scenes start."""
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

    schema = boundaries_schema(n, prompt.schema)
    return Task(
        key=f"{book.meta.book_id}/segmentation/chapter{window.chapter_index}/block{window.offset}",
        messages=prompt.messages(**values),
        schema=schema,
        max_tokens=answer_max_tokens(recipe.segmentation.max_tokens, schema),
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
        max_tokens=answer_max_tokens(cfg.max_tokens, prompt.schema),
        compress_attempts=cfg.compress_attempts,
        section=scene.chapter_title or "reference",
    )


def digest_task(book: Book, scene: Scene, prompt: PromptTemplate, recipe: PrepRecipe) -> Task:
    """Digest mode, step 1: the local momentum and events of ``scene`` (no chain: all scenes in one batch).
    Gates: plain prose, the names in its events found in the scene or the world context."""
    cfg = recipe.stages.summaries
    values = dict(
        world_context=book.meta.world_context or "(no world context)",
        scene=scene.text,
        field_guide=field_guide(prompt.schema),
    )
    seen = [scene.text, book.meta.world_context or ""]
    gate = gate_chain(
        lambda v: plain_prose_problem(prose_fields(v)),
        lambda v: grounded_problem("scene_events", listed_names(v.scene_events), seen),
    )
    return Task(
        key=f"{book.meta.book_id}/summary/digest/scene{scene.scene_id}",
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=answer_max_tokens(None, prompt.schema),
        gate=gate,
        feedback=prompt.feedback(**values),
        compress_attempts=cfg.compress_attempts,
        keep_best=keep_latest,
    )


def global_task(
    book: Book,
    scene: Scene,
    digest: SceneDigest,
    position: int,
    total: int,
    previous: RunningSummary | None,
    prompt: PromptTemplate,
    counter: TokenCounter,
    recipe: PrepRecipe,
) -> Task:
    """Digest mode, step 2: the global state after ``scene`` from the previous summary and its digest. The
    budget is checked on the whole running summary (the digest's local fields with this global state)."""
    cfg = recipe.stages.summaries
    budget = recipe.budgets.record.running_summary
    progress_after = summary_progress_after(position, total)
    previous_block = (
        prompt.render("previous", previous=previous.render(summary_progress_before(position, total)))
        if previous is not None
        else prompt.render("previous_first")
    )
    digest_text = "\n".join(f"- {k.replace('_', ' ').upper()}: {v}" for k, v in digest)
    values = dict(
        world_context=book.meta.world_context or "(no world context)",
        previous_block=previous_block,
        digest=digest_text,
        field_guide=field_guide(prompt.schema),
        budget_tokens=budget,
    )
    seen = [scene.text, digest_text, previous.render() if previous is not None else "", book.meta.world_context or ""]
    gate = gate_chain(
        lambda v: plain_prose_problem(prose_fields(v)),
        lambda v: grounded_problem("active_characters", listed_names(v.active_characters), seen),
        budget=token_budget_gate(
            counter.count, budget, "summary", lambda v: v.with_digest(digest).render(progress_after)
        ),
    )
    return Task(
        key=f"{book.meta.book_id}/summary/narrative/scene{scene.scene_id}",
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=answer_max_tokens(cfg.max_tokens, prompt.schema),
        gate=gate,
        feedback=prompt.feedback(**values),
        compress_attempts=cfg.compress_attempts,
        keep_best=keep_latest,
    )


# --------------------------------------------------------------------------- stage 7: instructions


def instruction_task(
    book: Book, scene: Scene, prompt: PromptTemplate, counter: TokenCounter, recipe: PrepRecipe
) -> Task:
    """The stage-7 task of ``scene``: the instruction a writer would need to write it.

    Quality gates: plain prose, the characters present found in the scene; then the record's instruction
    budget (``budgets.record.instruction`` tokens of the rendered instruction), compressed or flagged."""
    cfg = recipe.stages.instructions
    budget = recipe.budgets.record.instruction
    values = dict(
        world_context=book.meta.world_context or "(no world context)",
        scene=scene.text,
        field_guide=field_guide(prompt.schema),
        budget_tokens=budget,
    )
    gate = gate_chain(
        lambda v: plain_prose_problem(prose_fields(v)),
        lambda v: grounded_problem("characters_present", v.characters_present, [scene.text]),
        budget=token_budget_gate(counter.count, budget, "instruction"),
    )
    return Task(
        key=f"{book.meta.book_id}/instruction/scene{scene.scene_id}",
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=answer_max_tokens(cfg.max_tokens, prompt.schema),
        gate=gate,
        feedback=prompt.feedback(**values),
        compress_attempts=cfg.compress_attempts,
        keep_best=keep_latest,
    )

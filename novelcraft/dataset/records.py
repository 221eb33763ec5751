"""Compiling: Books -> ChatML training records, counted exactly, checked against the budget (pure)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..chat_format import (
    ChatMessage,
    ChatTemplate,
    load_chat_template,
    progress_percent,
    render_summary_section,
    scene_messages,
)
from ..errors import NovelcraftError
from ..io import sha256_text
from ..models import Book, RecordMeta, Scene, TrainingRecord
from ..splits import split_records
from .recipe import CompileRecipe
from .stats import (
    SPLITS,
    BookSummary,
    CompiledRecord,
    CompileResult,
    CompileStats,
    DroppedScene,
    SplitSummary,
    TokenSummary,
    histogram,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Draft:
    """A record before counting: its messages and the parts whose tokens are reported."""

    book: Book
    scene: Scene
    position: int
    length: int
    messages: list[ChatMessage]
    progress: int
    summary_section: str
    flags: list[str] = dataclasses.field(default_factory=list)


def _present(text: str | None) -> bool:
    return bool(text and text.strip())


def _drafts_for_book(
    book: Book, recipe: CompileRecipe, system_prompt: str
) -> tuple[list[_Draft], list[DroppedScene], int]:
    """Drafts of one book (narrative sequence, then reference sequence), scenes lacking inputs, and the
    number of reference scenes left out by the recipe."""
    narrative = [s for s in book.scenes if not s.is_reference]
    reference = [s for s in book.scenes if s.is_reference]
    sequences = [narrative] + ([reference] if recipe.reference_scenes == "keep" else [])
    world_context = book.meta.world_context
    drafts: list[_Draft] = []
    missing: list[DroppedScene] = []
    for seq in sequences:
        for pos, scene in enumerate(seq, start=1):
            prev = seq[pos - 2] if pos > 1 else None
            lacks = []
            if not _present(world_context):
                lacks.append("meta.world_context")
            if not _present(scene.instruction):
                lacks.append("instruction")
            if prev is not None and not _present(prev.running_summary):
                lacks.append(f"running_summary of scene {prev.scene_id} (the previous scene)")
            if lacks:
                missing.append(
                    DroppedScene(
                        book_id=book.meta.book_id,
                        scene_id=scene.scene_id,
                        is_reference=scene.is_reference,
                        reason="missing",
                        detail="missing " + ", ".join(lacks),
                    )
                )
                continue
            summary = prev.running_summary if prev is not None else recipe.opening_summary
            # what of this record came from a flagged LLM item: the book's world context, the summary before
            # the scene (written after the previous one), the scene's own instruction and segmentation
            flags = list(book.meta.flags) + [f for f in scene.flags if not f.startswith("summaries:")]
            flags += [f for f in (prev.flags if prev is not None else []) if f.startswith("summaries:")]
            if flags and recipe.flagged == "drop":
                missing.append(
                    DroppedScene(
                        book_id=book.meta.book_id,
                        scene_id=scene.scene_id,
                        is_reference=scene.is_reference,
                        reason="flagged",
                        detail="flagged " + "; ".join(flags),
                    )
                )
                continue
            progress = progress_percent(pos, len(seq))
            assert world_context is not None and scene.instruction is not None and summary is not None
            messages = scene_messages(system_prompt, world_context, summary, progress, scene.instruction, scene.text)
            drafts.append(
                _Draft(book, scene, pos, len(seq), messages, progress, render_summary_section(summary, progress), flags)
            )
    return drafts, missing, 0 if recipe.reference_scenes == "keep" else len(reference)


def _texts(book: Book, drafts: Sequence[_Draft], template: ChatTemplate) -> list[str]:
    """What is counted of one book: its world context, then per record its ChatML, scene, summary section and
    instruction (nothing for a book without records)."""
    if not drafts:
        return []
    texts = [book.meta.world_context or ""]
    for d in drafts:
        texts += [template.render(d.messages), d.messages[2].content, d.summary_section, d.scene.instruction or ""]
    return texts


def count_book(
    book: Book, recipe: CompileRecipe, counter: TokenCounter, system_prompt: str, template: ChatTemplate
) -> list[int]:
    """The token counts :func:`compile_books` needs of one book (its ``book_counts`` entry), counted exactly."""
    drafts, _, _ = _drafts_for_book(book, recipe, system_prompt.strip())
    return counter.count_batch(_texts(book, drafts, template))


def compile_books(
    books: Sequence[Book],
    recipe: CompileRecipe,
    counter: TokenCounter,
    *,
    sources: Sequence[str] | None = None,
    system_prompt: str | None = None,
    chat_template: ChatTemplate | None = None,
    book_counts: Sequence[Sequence[int]] | None = None,
) -> CompileResult:
    """Compile Books into train/validation records (pure apart from logging; no files).

    ``sources`` names each book's file for messages and the data card; ``system_prompt`` overrides
    the recipe's (default: ``recipe.system_prompt.resolve()``); ``chat_template`` the template the
    records are rendered with for counting (default: the recipe's ``chat_template``, resolved against
    its tokenizer). Every record is counted exactly with ``counter`` in one batch, or ``book_counts`` holds
    each book's counts made elsewhere by :func:`count_book` (the executor's workers). Raises
    :class:`~novelcraft.errors.NovelcraftError` naming book and scene when inputs are missing
    (``on_missing: fail``) or records exceed the budget (``on_over_budget: fail``).
    """
    if sources is not None and len(sources) != len(books):
        raise ValueError("sources must name every book")
    system_prompt = (system_prompt if system_prompt is not None else recipe.system_prompt.resolve()).strip()
    template = chat_template or load_chat_template(recipe.chat_template, recipe.tokenizer.name)
    seen: dict[str, int] = {}
    for i, book in enumerate(books):
        bid = book.meta.book_id
        if bid in seen:
            where = f" ({sources[seen[bid]]} and {sources[i]})" if sources else ""
            raise NovelcraftError(f"two books have book_id '{bid}'{where}", step="compile")
        seen[bid] = i

    drafts: list[_Draft] = []
    dropped: list[DroppedScene] = []
    ref_dropped = 0
    for book in books:
        book_drafts, missing, r = _drafts_for_book(book, recipe, system_prompt)
        drafts += book_drafts
        dropped += missing
        ref_dropped += r
    lacking = [d for d in dropped if d.reason == "missing"]
    if lacking and recipe.on_missing == "fail":
        first = lacking[0]
        src = sources[seen[first.book_id]] if sources else None
        more = f" (and {len(lacking) - 1} more scene{'s' * (len(lacking) != 2)})" if len(lacking) > 1 else ""
        raise NovelcraftError(
            f"book {first.book_id}: scene {first.scene_id}: {first.detail}{more}; run the LLM stages that fill "
            "them, or set on_missing=drop",
            path=src,
            step="compile",
        )
    for gone in dropped:
        log.warning("book %s: scene %s: dropped, %s", gone.book_id, gone.scene_id, gone.detail)

    # one batch: system once, then per book its world context and per record its ChatML, scene, summary
    # section and instruction (or the per-book counts an executor's workers made with the same texts)
    by_book = [[d for d in drafts if d.book is b] for b in books]
    if book_counts is None:
        texts = [system_prompt] + [x for b, ds in zip(books, by_book) for x in _texts(b, ds, template)]
        counts = counter.count_batch(texts)
        system_tokens, rest = counts[0], counts[1:]
        split_counts: list[Sequence[int]] = []
        at = 0
        for ds in by_book:
            size = len(ds) * 4 + 1 if ds else 0
            split_counts.append(rest[at : at + size])
            at += size
        book_counts = split_counts
    else:
        if len(book_counts) != len(books):
            raise ValueError("book_counts must have an entry per book")
        system_tokens = counter.count(system_prompt)
    wc_tokens: dict[str, int] = {}
    per_record: list[int] = []
    for b, ds, book_n in zip(books, by_book, book_counts):
        if len(book_n) != (len(ds) * 4 + 1 if ds else 0):
            raise ValueError(f"book {b.meta.book_id}: its counts do not fit its records")
        if ds:
            wc_tokens[b.meta.book_id] = book_n[0]
            per_record += book_n[1:]
    drafts = [d for ds in by_book for d in ds]

    max_tokens = recipe.budgets.record.max_tokens
    kept: list[tuple[_Draft, tuple[int, int, int, int]]] = []
    over_details: list[DroppedScene] = []
    for i, d in enumerate(drafts):
        total, scene_n, summary_n, instr_n = per_record[4 * i : 4 * i + 4]
        if total <= max_tokens:
            kept.append((d, (total, scene_n, summary_n, instr_n)))
            continue
        over_details.append(
            DroppedScene(
                book_id=d.book.meta.book_id,
                scene_id=d.scene.scene_id,
                is_reference=d.scene.is_reference,
                reason="over_budget",
                detail=f"{total} tokens as ChatML, budget is {max_tokens} (budgets.record.max_tokens): "
                f"scene {scene_n}, context {total - scene_n}",
            )
        )
    if over_details and recipe.on_over_budget == "fail":
        first = over_details[0]
        more = f" (and {len(over_details) - 1} more)" if len(over_details) > 1 else ""
        raise NovelcraftError(
            f"book {first.book_id}: scene {first.scene_id}: {first.detail}{more}; set on_over_budget=drop to leave "
            "them out, or cut smaller scenes",
            path=sources[seen[first.book_id]] if sources else None,
            step="budget",
        )
    for gone in over_details:
        log.warning("book %s: scene %s: dropped, %s", gone.book_id, gone.scene_id, gone.detail)
    dropped += over_details

    keys = [f"{d.book.meta.book_id}/{d.scene.scene_id}" for d, _ in kept]
    is_val, split_summary = split_records(keys, [d.book.meta.book_id for d, _ in kept], recipe.split)

    out: dict[str, list[CompiledRecord]] = {"train": [], "validation": []}
    rb = recipe.budgets.record
    section_over = {"system": 0, "world_context": 0, "running_summary": 0, "instruction": 0}
    for (d, (total, scene_n, summary_n, instr_n)), key, val in zip(kept, keys, is_val):
        split = "validation" if val else "train"
        wc_n = wc_tokens[d.book.meta.book_id]
        meta = RecordMeta(
            record_id=key,
            split=split,
            book_id=d.book.meta.book_id,
            scene_id=d.scene.scene_id,
            chapter_index=d.scene.chapter_index,
            chapter_title=d.scene.chapter_title,
            is_reference=d.scene.is_reference,
            position=d.position,
            sequence_length=d.length,
            progress_percent=d.progress,
            tokens=total,
            scene_tokens=scene_n,
            context_tokens=total - scene_n,
            world_context_tokens=wc_n,
            summary_tokens=summary_n,
            instruction_tokens=instr_n,
            flags=d.flags,
        )
        section_over["system"] += system_tokens > rb.system
        section_over["world_context"] += wc_n > rb.world_context
        section_over["running_summary"] += summary_n > rb.running_summary
        section_over["instruction"] += instr_n > rb.instruction
        out[split].append(CompiledRecord(record=TrainingRecord(messages=d.messages), meta=meta))

    stats = _stats(
        books,
        sources,
        recipe,
        counter,
        out,
        dropped,
        ref_dropped,
        split_summary,
        system_tokens,
        section_over,
        system_prompt,
    )
    stats.chat_template = template.label
    return CompileResult(train=out["train"], validation=out["validation"], stats=stats)


def _stats(
    books: Sequence[Book],
    sources: Sequence[str] | None,
    recipe: CompileRecipe,
    counter: TokenCounter,
    out: Mapping[str, list[CompiledRecord]],
    dropped: list[DroppedScene],
    ref_dropped: int,
    split_summary: SplitSummary,
    system_tokens: int,
    section_over: dict[str, int],
    system_prompt: str,
) -> CompileStats:
    metas = [r.meta for split in SPLITS for r in out[split]]
    per_book = []
    for i, book in enumerate(books):
        bid = book.meta.book_id
        per_book.append(
            BookSummary(
                book_id=bid,
                title=book.meta.title,
                author=book.meta.author,
                source=sources[i] if sources else None,
                narrative_scenes=sum(1 for s in book.scenes if not s.is_reference),
                reference_scenes=sum(1 for s in book.scenes if s.is_reference),
                train=sum(1 for r in out["train"] if r.meta.book_id == bid),
                validation=sum(1 for r in out["validation"] if r.meta.book_id == bid),
                dropped=sum(1 for d in dropped if d.book_id == bid),
            )
        )
    max_tokens = recipe.budgets.record.max_tokens
    tokens = {
        "record": TokenSummary.of([m.tokens for m in metas]),
        "scene": TokenSummary.of([m.scene_tokens for m in metas]),
        "context": TokenSummary.of([m.context_tokens for m in metas]),
        "system": TokenSummary.of([system_tokens] * len(metas)),
        "world_context": TokenSummary.of([m.world_context_tokens for m in metas]),
        "running_summary": TokenSummary.of([m.summary_tokens for m in metas]),
        "instruction": TokenSummary.of([m.instruction_tokens for m in metas]),
    }
    scene_sum, context_sum = tokens["scene"].total, tokens["context"].total
    over = sum(1 for d in dropped if d.reason == "over_budget")
    flagged: dict[str, int] = {}
    for m in metas:
        for stage in sorted({f.split(":", 1)[0] for f in m.flags}):
            flagged[stage] = flagged.get(stage, 0) + 1
    return CompileStats(
        name=recipe.name,
        tokenizer=counter.name,
        max_tokens=max_tokens,
        books=per_book,
        records={split: len(out[split]) for split in SPLITS},
        dropped=dropped,
        reference_scenes_dropped=ref_dropped,
        split=split_summary,
        tokens=tokens,
        narrative_context_ratio=round(scene_sum / context_sum, 3) if context_sum else None,
        histogram=histogram([m.tokens for m in metas], max_tokens, over),
        over_section_budget={k: v for k, v in section_over.items() if v},
        flagged=flagged,
        system_prompt_sha256=sha256_text(system_prompt),
    )

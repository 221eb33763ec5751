"""Chunking: a book's chapters -> (context, continuation) pairs cut at sentence ends (pure, deterministic).

Sentences come from pysbd (:mod:`novelcraft.sentences`), one paragraph at a time, with their character spans
in the chapter's text, so a
chunk's context and continuation are exact slices of the chapter (paragraph breaks kept) and never cross a
chapter. Reference sections (prefaces, notes, licences...) are never read: only ``book.chapters``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from ..models import Book, Chapter
from ..sentences import split_sentences
from ..strict import Record
from .recipe import ChunkConfig, SelectConfig

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

log = logging.getLogger(__name__)


class Chunk(Record):
    """One training pair: the context and the author's own continuation, exact slices of a chapter."""

    chunk_id: str = Field(..., description="BOOK_ID/cCHAPTER/kINDEX")
    book_id: str
    chapter_index: int = Field(..., ge=1)
    index: int = Field(..., ge=1, description="1-based position among the chapter's chunks")
    context: str = Field(..., min_length=1)
    target: str = Field(..., min_length=1, description="the continuation the author wrote")
    context_sentences: int = Field(..., ge=1)
    target_sentences: int = Field(..., ge=1)
    start: int = Field(..., ge=0, description="character offset of the context in the chapter text")
    split_at: int = Field(..., ge=0, description="character offset of the continuation")
    end: int = Field(..., ge=0, description="character offset after the continuation")
    context_tokens: int = Field(0, ge=0)
    target_tokens: int = Field(0, ge=0)


def chapter_body(chapter: Chapter, skip_first_line: bool = True) -> tuple[str, int]:
    """The chapter's text without its heading line, and the offset where it starts."""
    text = chapter.text
    if skip_first_line and text.lstrip().startswith("#"):
        cut = text.find("\n")
        return (text[cut + 1 :], cut + 1) if cut >= 0 else ("", len(text))
    return text, 0


def _plan(weights: Sequence[int], context: int, target: int, min_fraction: float) -> list[tuple[int, int, int]]:
    """(first, split, end) sentence indices of consecutive chunks: context sentences fill ``context`` weight,
    continuation sentences ``target``; a rest of at least ``min_fraction`` of a chunk is split by proportion."""
    plans = []
    i, n = 0, len(weights)
    full = context + target
    while i < n:
        j, w = i, 0
        while j < n and w < context:
            w += weights[j]
            j += 1
        k, wt = j, 0
        while k < n and wt < target:
            wt += weights[k]
            k += 1
        if w >= context and wt >= target:
            plans.append((i, j, k))
            i = k
            continue
        total = sum(weights[i:])
        if total >= min_fraction * full and n - i >= 2:
            # the rest, cut where its context reaches the chunk's proportion of it
            want, acc, split = total * context / full, 0, i
            while split < n - 1 and acc + weights[split] <= want:
                acc += weights[split]
                split += 1
            plans.append((i, max(split, i + 1), n))
        break
    return plans


def _share_plan(lengths: Sequence[int], chunk_sentences: int, share: float, min_fraction: float) -> list[tuple]:
    plans = []
    for i in range(0, len(lengths), chunk_sentences):
        group = lengths[i : i + chunk_sentences]
        if len(group) < 2 or (len(group) < chunk_sentences and len(group) < min_fraction * chunk_sentences):
            continue
        limit, acc, j = share * sum(group), 0, 0
        while j < len(group) - 1 and acc + group[j] <= limit:
            acc += group[j]
            j += 1
        plans.append((i, i + max(j, 1), i + len(group)))
    return plans


def chunk_chapter(
    book_id: str, chapter: Chapter, config: ChunkConfig, counter: TokenCounter | None = None
) -> list[Chunk]:
    """The chunks of one chapter (``counter`` is needed for ``unit: tokens`` and fills the token counts)."""
    body, offset = chapter_body(chapter, config.skip_first_line)
    sentences = split_sentences(body, config.language)
    if len(sentences) < 2:
        return []
    texts = [body[s.start : s.end] for s in sentences]
    if config.unit == "share":
        plans = _share_plan(
            [len(t) + 1 for t in texts], config.chunk_sentences, config.context_share, config.min_fraction
        )
    else:
        if config.unit == "tokens":
            if counter is None:
                raise ValueError("unit tokens needs a token counter")
            weights = counter.count_batch(texts)
        else:
            weights = [1] * len(texts)
        plans = _plan(weights, config.context, config.target, config.min_fraction)
    chunks = []
    for n, (a, b, c) in enumerate(plans, start=1):
        start, split, end = sentences[a].start, sentences[b].start, sentences[c - 1].end
        chunks.append(
            Chunk(
                chunk_id=f"{book_id}/c{chapter.index}/k{n}",
                book_id=book_id,
                chapter_index=chapter.index,
                index=n,
                context=body[start : sentences[b - 1].end],
                target=body[split:end],
                context_sentences=b - a,
                target_sentences=c - b,
                start=offset + start,
                split_at=offset + split,
                end=offset + end,
            )
        )
    return chunks


def chunk_book(
    book: Book, config: ChunkConfig, counter: TokenCounter | None = None, max_chapters: int | None = None
) -> list[Chunk]:
    """Every chunk of the book's narrative chapters, in order; exact token counts when ``counter`` is given."""
    chapters = book.chapters[:max_chapters] if max_chapters else book.chapters
    chunks = [c for ch in chapters for c in chunk_chapter(book.meta.book_id, ch, config, counter)]
    if counter is not None and chunks:
        counts = counter.count_batch([t for c in chunks for t in (c.context, c.target)])
        chunks = [
            c.model_copy(update={"context_tokens": counts[2 * i], "target_tokens": counts[2 * i + 1]})
            for i, c in enumerate(chunks)
        ]
    return chunks


def _rank(seed: int, chunk_id: str) -> str:
    return hashlib.sha256(f"{seed}:{chunk_id}".encode()).hexdigest()


def select_chunks(chunks: Sequence[Chunk], config: SelectConfig) -> list[Chunk]:
    """The record budget: a seeded, order-independent draw of at most ``max_per_book`` chunks per book and
    ``max_records`` in all; the kept chunks stay in book order."""
    keep = list(chunks)
    if config.max_per_book is not None:
        by_book: dict[str, list[Chunk]] = {}
        for c in keep:
            by_book.setdefault(c.book_id, []).append(c)
        chosen = {
            c.chunk_id
            for group in by_book.values()
            for c in sorted(group, key=lambda c: _rank(config.seed, c.chunk_id))[: config.max_per_book]
        }
        keep = [c for c in keep if c.chunk_id in chosen]
    if config.max_records is not None and len(keep) > config.max_records:
        chosen = {c.chunk_id for c in sorted(keep, key=lambda c: _rank(config.seed, c.chunk_id))[: config.max_records]}
        keep = [c for c in keep if c.chunk_id in chosen]
    return keep

"""Records: chunks with their reasoning -> CRA or chat records, counted exactly, budgeted and split (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from ..chat_format import ChatTemplate
from ..io import sha256_text
from ..reasoning_format import ContinuationRecord, FormatName, continuation_messages, length_phrase
from ..splits import SplitSummary, TokenSummary, split_records
from ..strict import Record
from .chunk import Chunk
from .recipe import ContinuationRecipe

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

SPLITS = ("train", "validation")


class ContinuationMeta(Record):
    """Sidecar line of a record (``train.meta.jsonl``): its source span, sizes and how it was made."""

    record_id: str = Field(..., description="BOOK_ID/cCHAPTER/kINDEX: the chunk")
    split: Literal["train", "validation"]
    format: FormatName
    book_id: str
    chapter_index: int = Field(..., ge=1)
    chunk_index: int = Field(..., ge=1)
    source_start: int = Field(..., ge=0, description="character offset of the context in the chapter text")
    source_split: int = Field(..., ge=0, description="character offset of the continuation")
    source_end: int = Field(..., ge=0)
    answer_sha256: str = Field(..., description="SHA-256 of the continuation: the answer must be exactly this text")
    guided: bool = False
    context_sentences: int = Field(..., ge=1)
    target_sentences: int = Field(..., ge=1)
    tokens: int = Field(..., ge=0, description="whole record rendered with the chat template")
    context_tokens: int = Field(..., ge=0)
    target_tokens: int = Field(..., ge=0)
    reasoning_tokens: int = Field(..., ge=0)
    reasoning_words: int = Field(..., ge=0)
    teacher: str = Field(..., description="the engine that wrote the reasoning")
    flagged: bool = Field(False, description="kept over the word budget after the compress attempts")


class ContinuationItem(BaseModel):
    """One record and its sidecar line."""

    record: ContinuationRecord
    meta: ContinuationMeta


class DroppedChunk(Record):
    """A chunk left out: why, and the details."""

    chunk_id: str
    reason: Literal["over_budget", "no_reasoning", "no_guidance"]
    detail: str


class ContinuationStats(Record):
    """Everything the data card shows, as data (``stats.json`` ``details.dataset``)."""

    name: str
    format: FormatName
    tokenizer: str
    chat_template: str
    teacher: str
    guidance_engine: str | None = None
    max_tokens: int
    books: dict[str, dict[str, int]] = Field(default_factory=dict, description="per book: chunks, train, validation")
    records: dict[str, int]
    chunks: int = Field(..., description="chunks cut from the chapters")
    selected: int = Field(..., description="chunks kept by the record budget")
    guided: int = 0
    flagged: int = 0
    dropped: list[DroppedChunk] = Field(default_factory=list)
    split: SplitSummary
    tokens: dict[str, TokenSummary] = Field(default_factory=dict)


@dataclass
class Built:
    """What :func:`build_records` returns: the records per split and the stats."""

    train: list[ContinuationItem]
    validation: list[ContinuationItem]
    stats: ContinuationStats


@dataclass(frozen=True)
class Reasoned:
    """A chunk with its teacher outputs."""

    chunk: Chunk
    reasoning: str
    guidance: str | None = None
    flagged: bool = False


def record_messages(item: Reasoned, fmt: FormatName, length_note: bool) -> ContinuationRecord:
    """The record of one reasoned chunk in ``fmt``."""
    length = length_phrase(item.chunk.target_sentences) if fmt == "chat" and length_note else None
    messages = continuation_messages(
        fmt,
        item.chunk.context,
        guidance=item.guidance,
        length=length,
        reasoning=item.reasoning,
        answer=item.chunk.target,
    )
    return ContinuationRecord(messages=messages)


def build_records(
    items: Sequence[Reasoned],
    recipe: ContinuationRecipe,
    counter: TokenCounter,
    template: ChatTemplate,
    *,
    chunks: int,
    dropped: Sequence[DroppedChunk] = (),
    teacher: str,
    guidance_engine: str | None = None,
) -> Built:
    """Records of ``items``, each counted exactly (one batch) with ``template``; over-budget ones dropped;
    split by book (compile's seeded split). Deterministic: the same inputs give the same records."""
    fmt = recipe.records.format
    records = [record_messages(it, fmt, recipe.records.length_note) for it in items]
    texts: list[str] = []
    for rec, it in zip(records, items):
        texts += [template.render(rec.messages), it.reasoning]
    counts = counter.count_batch(texts) if texts else []
    gone = list(dropped)
    kept: list[tuple[ContinuationRecord, Reasoned, int, int]] = []
    limit = recipe.records.max_tokens
    for i, (rec, it) in enumerate(zip(records, items)):
        total, reasoning_n = counts[2 * i], counts[2 * i + 1]
        if total > limit:
            gone.append(
                DroppedChunk(
                    chunk_id=it.chunk.chunk_id,
                    reason="over_budget",
                    detail=f"{total} tokens with the chat template, budget is {limit} (records.max_tokens)",
                )
            )
            continue
        kept.append((rec, it, total, reasoning_n))
    keys = [it.chunk.chunk_id for _, it, _, _ in kept]
    held, summary = split_records(keys, [it.chunk.book_id for _, it, _, _ in kept], recipe.split)
    out: dict[str, list[ContinuationItem]] = {"train": [], "validation": []}
    for (rec, it, total, reasoning_n), val in zip(kept, held):
        split: Literal["train", "validation"] = "validation" if val else "train"
        c = it.chunk
        meta = ContinuationMeta(
            record_id=c.chunk_id,
            split=split,
            format=fmt,
            book_id=c.book_id,
            chapter_index=c.chapter_index,
            chunk_index=c.index,
            source_start=c.start,
            source_split=c.split_at,
            source_end=c.end,
            answer_sha256=sha256_text(c.target.strip()),
            guided=it.guidance is not None,
            context_sentences=c.context_sentences,
            target_sentences=c.target_sentences,
            tokens=total,
            context_tokens=c.context_tokens,
            target_tokens=c.target_tokens,
            reasoning_tokens=reasoning_n,
            reasoning_words=len(it.reasoning.split()),
            teacher=teacher,
            flagged=it.flagged,
        )
        out[split].append(ContinuationItem(record=rec, meta=meta))
    metas = [x.meta for s in SPLITS for x in out[s]]
    books: dict[str, dict[str, int]] = {}
    for it in items:
        books.setdefault(it.chunk.book_id, {"chunks": 0, "train": 0, "validation": 0})["chunks"] += 1
    for m in metas:
        books[m.book_id][m.split] += 1
    stats = ContinuationStats(
        name=recipe.name,
        format=fmt,
        tokenizer=counter.name,
        chat_template=template.label,
        teacher=teacher,
        guidance_engine=guidance_engine,
        max_tokens=limit,
        books=dict(sorted(books.items())),
        records={s: len(out[s]) for s in SPLITS},
        chunks=chunks,
        selected=len(items) + sum(1 for d in dropped),
        guided=sum(1 for m in metas if m.guided),
        flagged=sum(1 for m in metas if m.flagged),
        dropped=sorted(gone, key=lambda d: d.chunk_id),
        split=summary,
        tokens={
            "record": TokenSummary.of([m.tokens for m in metas]),
            "context": TokenSummary.of([m.context_tokens for m in metas]),
            "continuation": TokenSummary.of([m.target_tokens for m in metas]),
            "reasoning": TokenSummary.of([m.reasoning_tokens for m in metas]),
        },
    )
    return Built(train=out["train"], validation=out["validation"], stats=stats)

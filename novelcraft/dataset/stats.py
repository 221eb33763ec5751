"""Results and statistics of a compiled data set (what the data card and ``stats.json`` show)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ..chat_format import ChatMessage, render_chatml
from ..models import RecordMeta, TrainingRecord
from ..splits import SplitSummary, TokenSummary
from ..strict import Record

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

SPLITS = ("train", "validation")
#: width of the budget histogram's bins, in tokens.
HISTOGRAM_BIN = 512


class CompiledRecord(BaseModel):
    """One training record and its metadata sidecar line."""

    record: TrainingRecord
    meta: RecordMeta


class DroppedScene(Record):
    """A scene left out of the data set: why (missing fields, over budget) and the details."""

    book_id: str
    scene_id: int
    is_reference: bool
    reason: Literal["missing", "over_budget", "flagged"]
    detail: str


class BookSummary(Record):
    """Per book: its scenes and how many records went to train, validation or were dropped."""

    book_id: str
    title: str
    author: str
    source: str | None = None
    narrative_scenes: int
    reference_scenes: int
    train: int = 0
    validation: int = 0
    dropped: int = 0


class CompileStats(Record):
    """Everything the data card shows, as data (written to stats.json)."""

    name: str
    tokenizer: str
    chat_template: str = "chatml (Qwen3-30B-A3B-Instruct-2507, no think blocks)"
    max_tokens: int
    books: list[BookSummary]
    records: dict[str, int]
    dropped: list[DroppedScene] = Field(default_factory=list)
    reference_scenes_dropped: int = 0
    split: SplitSummary
    tokens: dict[str, TokenSummary] = Field(default_factory=dict)
    narrative_context_ratio: float | None = Field(None, description="sum of scene tokens / sum of context tokens")
    histogram: list[tuple[str, int]] = Field(default_factory=list, description="(token range, kept records)")
    over_section_budget: dict[str, int] = Field(default_factory=dict, description="records over a section budget")
    flagged: dict[str, int] = Field(
        default_factory=dict, description="kept records holding a flagged LLM item, by stage (see RecordMeta.flags)"
    )
    system_prompt_sha256: str


class CompileResult(BaseModel):
    """Compiled records per split plus statistics; ``run_dir`` is set by :func:`run_compile`."""

    train: list[CompiledRecord]
    validation: list[CompiledRecord]
    stats: CompileStats
    run_dir: str | None = None
    skipped: bool = False
    seconds: float = 0.0
    files: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        """The lines ``novelcraft compile`` prints: records, tokens, split, dropped scenes."""
        s = self.stats
        tok = s.tokens.get("record")
        lines = [
            f"data set {self.run_dir or s.name}: {s.records['train']} train + {s.records['validation']} validation "
            f"records from {len(s.books)} book{'s' * (len(s.books) != 1)}"
            + (" (unchanged, skipped)" if self.skipped else f" in {self.seconds:.1f}s")
            + f" (tokenizer {s.tokenizer})",
        ]
        if tok and tok.count:
            ratio = f", narrative:context {s.narrative_context_ratio:.2f}:1" if s.narrative_context_ratio else ""
            lines.append(
                f"  tokens per record: min {tok.min}, median {tok.median:g}, p95 {tok.p95}, max {tok.max} "
                f"(budget {s.max_tokens}){ratio}"
            )
        if s.records["train"] or s.records["validation"]:
            lines.append(f"  split: {s.split.describe()}")
        if s.dropped or s.reference_scenes_dropped:
            by_reason: dict[str, int] = {}
            for d in s.dropped:
                by_reason[d.reason] = by_reason.get(d.reason, 0) + 1
            parts = [f"{n} {r.replace('_', ' ')}" for r, n in sorted(by_reason.items())]
            if s.reference_scenes_dropped:
                parts.append(f"{s.reference_scenes_dropped} reference (recipe)")
            lines.append(f"  dropped scenes: {', '.join(parts)}")
        kept_flagged = sum(1 for split in (self.train, self.validation) for r in split if r.meta.flags)
        if kept_flagged:
            by_stage = ", ".join(f"{k} {v}" for k, v in sorted(s.flagged.items()))
            lines.append(f"  flagged records kept: {kept_flagged} ({by_stage}; flagged=drop leaves them out)")
        if s.split.note:
            lines.append(f"  split: {s.split.note}")
        return "\n".join(lines)


class DatasetStats(Record):
    """Token statistics of a ChatML data set (ours or a foreign one), counted exactly."""

    records: int
    tokens: TokenSummary
    scene: TokenSummary
    context: TokenSummary
    narrative_context_ratio: float | None


def dataset_stats(records: Sequence[TrainingRecord | Mapping[str, Any]], counter: TokenCounter) -> DatasetStats:
    """Records, tokens per record (ChatML), scene (assistant) and context (the rest) token statistics and
    the narrative:context ratio (sum of scene tokens / sum of context tokens), in one batch."""
    msgs = [r.messages if isinstance(r, TrainingRecord) else r["messages"] for r in records]
    texts = []
    for m in msgs:
        plain = [x.model_dump() if isinstance(x, ChatMessage) else x for x in m]
        answers = [x["content"] for x in plain if x["role"] == "assistant"]
        texts += [render_chatml(plain), answers[-1] if answers else ""]
    counts = counter.count_batch(texts) if texts else []
    totals, scenes = counts[0::2], counts[1::2]
    contexts = [t - s for t, s in zip(totals, scenes)]
    return DatasetStats(
        records=len(msgs),
        tokens=TokenSummary.of(totals),
        scene=TokenSummary.of(scenes),
        context=TokenSummary.of(contexts),
        narrative_context_ratio=round(sum(scenes) / sum(contexts), 3) if sum(contexts) else None,
    )


def histogram(totals: Sequence[int], max_tokens: int, over: int) -> list[tuple[str, int]]:
    """Kept records per token range ``(lo, hi]`` of width :data:`HISTOGRAM_BIN`, then the over-budget count."""
    edges = list(range(0, max_tokens, HISTOGRAM_BIN)) + [max_tokens]
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        n = sum(1 for t in totals if lo < t <= hi or (lo == 0 and t == 0))
        rows.append((f"{lo + 1 if lo else 0}–{hi}", n))
    rows.append((f"> {max_tokens} (dropped)", over))
    return rows

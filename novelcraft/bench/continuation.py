"""Judge-free evaluation of reasoning story continuation on held-out chunks (``novelcraft bench --continuation``).

For every model of a ``kind: bench_continuation`` recipe (a base and a fine-tuned one, say) and every
held-out record of a continuation data set (``validation.jsonl`` + its sidecar), the model continues the
record's context with the prompt it would be used with (:mod:`novelcraft.reasoning_format`), and its answer is
scored without any judge model:

* **format** — whether the answer is well formed (``<reasoning>`` then ``<answer>``, nothing repaired);
* **length adherence** — sentences (and words) written over the author's continuation's;
* **repetition** — the share of repeated word 4-grams in the continuation, and the share of its 8-grams
  copied from the context;
* **progress** — the embedding distance of the continuation from its context over the author's continuation's
  distance from the same context (1: moves the story as far as the author did; 0: stays where it was);
* **reasoning usefulness** (the VR-CLI idea, arXiv 2503.22828) — with any local scorer model, the gain in
  log-likelihood of the author's continuation when the model's reasoning is added to the context:
  ``log PPL(gold | context) - log PPL(gold | context, reasoning)`` (positive: the reasoning helps predict what
  the author wrote). The data set's own (teacher) reasoning is scored the same way as a reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from ..llm.config import LLMConfig
from ..reasoning_format import FormatName
from ..recipes import Recipe
from ..sentences import sentence_count
from ..strict import Strict
from .metrics import ngrams, repetition_rate, words


class BenchModel(Strict):
    """One model under test: its name in the report, its engine, the prompt format it was trained on."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    llm: LLMConfig
    format: FormatName = "cra"
    max_tokens: int = Field(1024, ge=16, description="answer limit: reasoning and continuation")


class ScorerConfig(Strict):
    """The local model that scores reasoning usefulness (a transformers model folder, hub id or ``embedded``)."""

    enabled: bool = True
    model: str = "embedded"
    dtype: Literal["float32", "bfloat16"] = "float32"
    max_context_tokens: int = Field(1024, ge=64, description="the context is cut to its last N tokens")
    threads: int = Field(1, ge=1)


class ContinuationBenchRecipe(Recipe):
    """Recipe of ``novelcraft bench --continuation``: held-out records, models, scorer, embedder."""

    kind: Literal["bench_continuation"] = "bench_continuation"
    output_dir: str = Field("runs/bench", description="the report goes to OUTPUT_DIR/NAME")
    data: str = Field(..., description="validation.jsonl of a continuation data set (its .meta.jsonl beside it)")
    max_items: int | None = Field(None, ge=1, description="the first N held-out records")
    models: list[BenchModel] = Field(..., min_length=1)
    scorer: ScorerConfig = ScorerConfig()
    embedder: Literal["auto", "minilm", "tfidf", "none"] = "auto"
    language: str = "en"


class ItemScore(BaseModel):
    """The scores of one model on one held-out record."""

    record_id: str
    clean_format: bool
    repairs: list[str] = Field(default_factory=list)
    sentences: int
    gold_sentences: int
    words: int
    gold_words: int
    length_ratio: float | None = Field(None, description="sentences written / the author's")
    repetition: float = Field(..., description="share of repeated word 4-grams in the continuation")
    context_copy: float = Field(..., description="share of the continuation's word 8-grams found in the context")
    progress: float | None = Field(None, description="distance(continuation, context) / distance(gold, context)")
    reasoning_gain: float | None = Field(
        None, description="log PPL(gold | context) - log PPL(gold | context, reasoning)"
    )
    seconds: float = 0.0
    error: str | None = None


class ModelSummary(BaseModel):
    """One model over all items: the medians and means the report shows."""

    name: str
    items: int
    failed: int
    clean_format: float | None
    length_ratio_median: float | None
    length_log_error: float | None = Field(None, description="mean |log(sentences / gold sentences)|: 0 is exact")
    repetition: float | None
    context_copy: float | None
    progress_median: float | None
    reasoning_gain_mean: float | None
    reasoning_helps: float | None = Field(None, description="share of items whose reasoning_gain is positive")
    seconds: float


def length_ratio(written: int, gold: int) -> float | None:
    """``written / gold`` (None without a gold length)."""
    return written / gold if gold else None


def context_copy(text: str, context: str, n: int = 8) -> float:
    """Share of ``text``'s word ``n``-grams that occur in ``context``."""
    grams = set(ngrams(words(text), n))
    if not grams:
        return 0.0
    return len(grams & set(ngrams(words(context), n))) / len(grams)


def progress_ratio(d_generated: float, d_gold: float) -> float | None:
    """How far a continuation moved from its context, relative to the author's continuation."""
    return d_generated / d_gold if d_gold > 1e-9 else None


def text_scores(
    answer: str, gold: str, context: str, language: str = "en"
) -> tuple[int, int, float | None, float, float]:
    """(sentences, gold sentences, length ratio, repetition, context copy) of one continuation."""
    n, g = sentence_count(answer, language), sentence_count(gold, language)
    return n, g, length_ratio(n, g), repetition_rate(words(answer)), context_copy(answer, context)


def _median(values: Sequence[float]) -> float | None:
    s = sorted(values)
    if not s:
        return None
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(name: str, scores: Sequence[ItemScore]) -> ModelSummary:
    """The summary line of one model."""
    ok = [s for s in scores if s.error is None]
    ratios = [s.length_ratio for s in ok if s.length_ratio]
    gains = [s.reasoning_gain for s in ok if s.reasoning_gain is not None]
    return ModelSummary(
        name=name,
        items=len(scores),
        failed=len(scores) - len(ok),
        clean_format=_mean([float(s.clean_format) for s in ok]),
        length_ratio_median=_median(ratios),
        length_log_error=_mean([abs(math.log(r)) for r in ratios]),
        repetition=_mean([s.repetition for s in ok]),
        context_copy=_mean([s.context_copy for s in ok]),
        progress_median=_median([s.progress for s in ok if s.progress is not None]),
        reasoning_gain_mean=_mean(gains),
        reasoning_helps=_mean([float(g > 0) for g in gains]),
        seconds=round(sum(s.seconds for s in scores), 2),
    )

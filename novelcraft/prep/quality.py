"""How good an LLM is at each prep stage, judge-free: against gold the books carry themselves.

* **Segmentation** — the gold boundaries are the book's own: its scene breaks (``* * *``, a rule, ``⁂``) and,
  in pseudo-chapters made by joining consecutive chapters, the chapter boundary that was hidden.
  :func:`boundary_scores` gives precision, recall and F1 of predicted scene starts (within a tolerance of
  blocks) over any number of windows.
* **Summaries** — :func:`summary_faithfulness`: the names a summary uses that occur in the scenes it covers
  (precision), the scenes' main names it keeps (recall), its fields within their word budgets, and drift
  (precision of the late summaries of a chain against its early ones).
* **Instructions** — :func:`instruction_adherence`: an instruction is more similar to its own scene than to
  the book's other scenes (the embedder is injected).

All functions are pure; ``benchmarks/stage_quality.py`` runs them with any engine.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Sequence

from ..models import Block, Chapter, RunningSummary
from ..names import name_words
from .structure.document import is_scene_break

_NAME = re.compile(r"\b[A-Z][a-z'’]+(?:\s+[A-Z][a-z'’]+)*")


@dataclasses.dataclass(frozen=True)
class GoldWindow:
    """Blocks to segment and where the book itself starts a new scene in them (block 0 excluded)."""

    name: str
    blocks: tuple[Block, ...]
    gold: tuple[int, ...]
    kind: str  # "scene breaks" | "joined chapters"


def break_starts(blocks: Sequence[Block]) -> list[int]:
    """Blocks that begin a scene after a break: the block holding the text after a break paragraph."""
    starts = []
    for i, b in enumerate(blocks):
        paras = b.text.split("\n\n")
        for k, p in enumerate(paras):
            if is_scene_break(p):
                after = i + 1 if k == len(paras) - 1 else i
                if 0 < after < len(blocks) and after not in starts:
                    starts.append(after)
    return starts


def gold_windows(
    chapters: Sequence[Chapter], *, join: bool = True, min_blocks: int = 3, max_tokens: int = 6000
) -> list[GoldWindow]:
    """Windows of at most ``max_tokens`` (what one segmentation call sees) with their gold starts: the parts of
    chapters that carry scene breaks, and (``join``) the end of each chapter joined to the start of the next,
    whose hidden boundary is the second chapter's first block (breaks inside either kept as gold too)."""
    out = []
    for ch in chapters:
        lo, used = 0, 0
        for i, blk in enumerate([*ch.blocks, None]):
            if blk is not None and (used + blk.tokens <= max_tokens or i == lo):
                used += blk.tokens
                continue
            part = tuple(ch.blocks[lo:i])
            gold = break_starts(part)
            if gold and len(part) >= min_blocks:
                out.append(GoldWindow(f"chapter {ch.index} blocks {lo}-{i - 1}", part, tuple(gold), "scene breaks"))
            lo, used = i, (blk.tokens if blk is not None else 0)
    if join:
        for a, b in zip(chapters, chapters[1:]):
            head = _fit(list(reversed(a.blocks)), max_tokens // 2)[::-1]
            tail = _fit(list(b.blocks), max_tokens - sum(x.tokens for x in head))
            if not head or not tail:
                continue
            blocks = tuple(head) + tuple(tail)
            gold = break_starts(head) + [len(head)] + [len(head) + g for g in break_starts(tail)]
            out.append(GoldWindow(f"chapters {a.index}+{b.index}", blocks, tuple(sorted(set(gold))), "joined chapters"))
    return out


def _fit(blocks: list[Block], budget: int) -> list[Block]:
    """The leading blocks of ``blocks`` within ``budget`` tokens (at least one)."""
    out: list[Block] = []
    for b in blocks:
        if out and sum(x.tokens for x in out) + b.tokens > budget:
            break
        out.append(b)
    return out


@dataclasses.dataclass
class BoundaryScores:
    """Predicted scene starts against gold ones (block 0 is never counted: every segmentation has it)."""

    predicted: int
    gold: int
    matched_predicted: int
    matched_gold: int

    @property
    def precision(self) -> float:
        """Share of predicted starts that land on a gold start (within the tolerance)."""
        return self.matched_predicted / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """Share of gold starts a predicted start lands on."""
        return self.matched_gold / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def boundary_scores(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], tolerance: int = 1) -> BoundaryScores:
    """Scores over windows of ``(predicted starts, gold starts)``; a start within ``tolerance`` blocks of one
    on the other side matches it."""
    total = BoundaryScores(0, 0, 0, 0)
    for predicted, gold in pairs:
        pred = [p for p in predicted if p > 0]
        gold_ = [g for g in gold if g > 0]
        total.predicted += len(pred)
        total.gold += len(gold_)
        total.matched_predicted += sum(1 for p in pred if any(abs(p - g) <= tolerance for g in gold_))
        total.matched_gold += sum(1 for g in gold_ if any(abs(p - g) <= tolerance for p in pred))
    return total


def names_in(text: str, known: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Identifying name words of ``text``: capitalised words (not titles or pronouns); a lone capitalised
    word that opens a sentence counts only when it is a ``known`` name (any word may open a sentence)."""
    out: set[str] = set()
    for m in _NAME.finditer(text):
        start = m.start()
        before = text[max(0, start - 2) : start]
        tokens = name_words(m.group(0))
        if (start == 0 or re.search(r"[.!?\"“]\s*$", before)) and len(m.group(0).split()) == 1:
            tokens = [t for t in tokens if t in known]
        out.update(tokens)
    return out


@dataclasses.dataclass
class SummaryScores:
    """Faithfulness of a chain of summaries to the scenes they cover."""

    summaries: int
    name_precision: float | None  # None: no summary named anyone (nothing to be precise about)
    name_recall: float
    within_budget: float
    drift: float | None
    naming: int = 0  # summaries that name anyone

    def as_dict(self) -> dict[str, float | int | None]:
        """The scores as a dict (for reports)."""
        return dataclasses.asdict(self)


def summary_faithfulness(
    scene_texts: Sequence[str], summaries: Sequence[RunningSummary | None], top: int = 5
) -> SummaryScores:
    """``summaries[i]`` is the summary after scene ``i``. Precision: the names of a summary that occur in
    scenes ``0..i``; recall: the ``top`` most frequent names of those scenes that the summary keeps;
    within budget: the share of summaries whose every field is within its word budget; drift: precision
    of the chain's second half minus its first half (negative: it invents more as it goes). A summary that
    names no one has no precision (``naming`` counts those that name anyone; none: precision ``None``)."""
    precisions, recalls, within = [], [], 0
    seen: Counter[str] = Counter()
    for text, summary in zip(scene_texts, summaries):
        seen.update(n for n in re.findall(r"\b[A-Z][a-z'’]+", text) if n in names_in(text))
        if summary is None:
            continue
        used = names_in(". ".join(str(v) for _, v in summary), set(seen))  # each field starts a sentence
        if used:
            precisions.append(sum(1 for n in used if n in seen) / len(used))
        main = [n for n, _ in seen.most_common(top)]
        if main:
            recalls.append(sum(1 for n in main if n in used) / len(main))
        try:
            RunningSummary.model_validate(summary.model_dump())
            within += 1
        except ValueError:
            pass
    n = sum(1 for s in summaries if s is not None)
    half = len(precisions) // 2
    drift = (sum(precisions[half:]) / len(precisions[half:]) - sum(precisions[:half]) / half) if half else None
    return SummaryScores(
        summaries=n,
        name_precision=sum(precisions) / len(precisions) if precisions else None,
        name_recall=sum(recalls) / len(recalls) if recalls else 0.0,
        within_budget=within / n if n else 0.0,
        drift=drift,
        naming=len(precisions),
    )


def instruction_adherence(
    instructions: Sequence[str], scenes: Sequence[str], embed: Callable[[Sequence[str]], Sequence[Sequence[float]]]
) -> dict[str, float]:
    """Similarity of each instruction to its own scene vs the other scenes: top-1 accuracy (its scene is the
    most similar), mean rank (1 = best) and the mean margin (own similarity minus the mean of the others)."""
    if len(instructions) < 2:
        return {"top1": 0.0, "mean_rank": 0.0, "margin": 0.0}
    vi, vs = embed(list(instructions)), embed(list(scenes))
    top1, ranks, margins = 0, [], []
    for i, a in enumerate(vi):
        sims = [sum(x * y for x, y in zip(a, b)) for b in vs]
        order = sorted(range(len(sims)), key=lambda k: -sims[k])
        rank = order.index(i) + 1
        top1 += rank == 1
        ranks.append(rank)
        others = [s for k, s in enumerate(sims) if k != i]
        margins.append(sims[i] - sum(others) / len(others))
    n = len(instructions)
    return {"top1": top1 / n, "mean_rank": sum(ranks) / n, "margin": sum(margins) / n}

"""Deterministic part of stage 5: paragraphs -> token-budgeted blocks -> atomic scenes -> semantic scenes.

Invariant kept by every function here: joining the pieces (with each block's ``joiner``) reproduces the
input text exactly - no paragraph is lost, duplicated or truncated. Over-long paragraphs are split at
sentence boundaries (then at word boundaries as a last resort), never dropped.

Every token count here is exact, and the text is encoded about once: paragraphs are counted in one
batch, and the counts of blocks and scenes (runs of paragraphs) are derived from them by
:class:`~novelcraft.tokens.SpanCounter`, which re-encodes only the short stretches across each join.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..models import Block
from ..tokens import SpanCounter, TokenCounter

_PARA_SEP = re.compile(r"(\n[ \t]*\n\s*)")
# end of sentence: . ! ? … (optionally closed by quotes/brackets) followed by whitespace
_SENT_END = re.compile(r"(?<=[.!?…])[\"'”’»)\]]*(\s+)")


@dataclass(frozen=True)
class Unit:
    """A paragraph or a piece of one, with the exact text that preceded it."""

    joiner: str
    text: str
    tokens: int
    split: bool = False


def split_paragraphs_exact(text: str) -> tuple[list[str], list[str]]:
    """(paragraphs, joiners) with ``joiners[0] == ''`` and ``''.join(j + p) == text``.

    ``text`` must not start or end with whitespace (callers strip it).
    """
    parts = _PARA_SEP.split(text)
    paras = parts[0::2]
    joiners = [""] + parts[1::2]
    return paras, joiners


def split_sentences(paragraph: str) -> tuple[list[str], list[str]]:
    """(sentences, joiners) such that ``''.join(j + s) == paragraph``."""
    sentences: list[str] = []
    joiners: list[str] = [""]
    pos = 0
    for m in _SENT_END.finditer(paragraph):
        ws_start, ws_end = m.span(1)
        if ws_end >= len(paragraph):
            break
        sentences.append(paragraph[pos:ws_start])
        joiners.append(paragraph[ws_start:ws_end])
        pos = ws_end
    sentences.append(paragraph[pos:])
    return sentences, joiners[: len(sentences)]


def _pack_runs(joiners: list[str], counts: list[int], max_tokens: int) -> list[tuple[int, int]]:
    """Greedy packing of consecutive pieces into runs ``[a, b)`` whose estimate stays <= max_tokens.

    The estimate adds one token per join; the caller counts the runs exactly.
    """
    runs: list[tuple[int, int]] = []
    start, cur_tok = 0, 0
    for i, tok in enumerate(counts):
        if i > start and cur_tok + tok + 1 > max_tokens:
            runs.append((start, i))
            start, cur_tok = i, tok
        elif i > start:
            cur_tok += tok + 1
        else:
            cur_tok = tok
    if counts:
        runs.append((start, len(counts)))
    return runs


def split_long_paragraph(paragraph: str, counter: TokenCounter, max_tokens: int) -> list[tuple[str, str]]:
    """Split one paragraph into (joiner, piece) runs of at most ``max_tokens``: sentences first, then words.

    The first joiner is ``''``; ``''.join(j + p)`` equals the paragraph.
    """
    return [(j, t) for j, t, _ in split_long_paragraph_counted(paragraph, counter, max_tokens)]


def split_long_paragraph_counted(paragraph: str, counter: TokenCounter, max_tokens: int) -> list[tuple[str, str, int]]:
    """:func:`split_long_paragraph` with the exact token count of each piece (derived, not re-encoded)."""
    sentences, joiners = split_sentences(paragraph)
    counts = counter.count_batch(sentences)
    pieces: list[str] = []
    piece_joiners: list[str] = []
    piece_counts: list[int] = []
    for sent, join, tok in zip(sentences, joiners, counts):
        if tok <= max_tokens:
            pieces.append(sent)
            piece_joiners.append(join)
            piece_counts.append(tok)
            continue
        # a single sentence over budget: fall back to word boundaries
        words = re.split(r"(\s+)", sent)
        w_text, w_join = words[0::2], [""] + words[1::2]
        w_counts = counter.count_batch(w_text)
        packed = _pack_runs(w_join, w_counts, max_tokens)
        w_spans = SpanCounter(counter, w_text, w_join, w_counts)
        for k, ((a, b), n) in enumerate(zip(packed, w_spans.count_runs(packed))):
            pieces.append(w_spans.text(a, b))
            piece_joiners.append(join if k == 0 else w_join[a])
            piece_counts.append(n)
    runs = _pack_runs(piece_joiners, piece_counts, max_tokens)
    spans = SpanCounter(counter, pieces, piece_joiners, piece_counts)
    return [
        ("" if r == 0 else piece_joiners[a], spans.text(a, b), n)
        for r, ((a, b), n) in enumerate(zip(runs, spans.count_runs(runs)))
    ]


def paragraph_units(text: str, counter: TokenCounter, max_tokens: int) -> list[Unit]:
    """Paragraph units of ``text`` (each paragraph counted once, in one batch), long ones split."""
    paras, joiners = split_paragraphs_exact(text)
    counts = counter.count_batch(paras)
    units: list[Unit] = []
    for para, join, tok in zip(paras, joiners, counts):
        if tok <= max_tokens:
            units.append(Unit(join, para, tok))
            continue
        for k, (pj, pt, pc) in enumerate(split_long_paragraph_counted(para, counter, max_tokens)):
            units.append(Unit(join if k == 0 else pj, pt, pc, split=True))
    return units


def _estimate(units: Sequence[Unit]) -> int:
    # Each join adds at most one token with Qwen-style BPE (newlines pre-tokenize on their own).
    return sum(u.tokens for u in units) + max(0, len(units) - 1)


def make_blocks(text: str, counter: TokenCounter, *, min_tokens: int = 75, max_tokens: int = 1000) -> list[Block]:
    """Paragraphs -> blocks of >= ``min_tokens`` (small paragraphs merged forward), each <= ``max_tokens``.

    Only a chapter whose whole text is below ``min_tokens`` yields a smaller block. Block token counts
    are exact (derived from the paragraph counts, see the module docs).
    """
    return make_blocks_counted(text, counter, min_tokens=min_tokens, max_tokens=max_tokens)[0]


def make_blocks_counted(
    text: str, counter: TokenCounter, *, min_tokens: int = 75, max_tokens: int = 1000
) -> tuple[list[Block], int]:
    """:func:`make_blocks` and the exact token count of the stripped ``text``, from the same paragraph counts."""
    text = text.strip()
    if not text:
        return [], 0
    units = paragraph_units(text, counter, max_tokens)
    spans = SpanCounter(counter, [u.text for u in units], [u.joiner for u in units], [u.tokens for u in units])
    groups: list[tuple[int, int]] = []  # runs [a, b) of units
    start = 0
    for n in range(len(units)):
        if n > start and _estimate(units[start : n + 1]) > max_tokens:
            groups.append((start, n))
            start = n
        # the estimate can overshoot by the join tokens, so confirm the minimum with an exact count
        if _estimate(units[start : n + 1]) >= min_tokens and (n == start or spans.count(start, n + 1) >= min_tokens):
            groups.append((start, n + 1))
            start = n + 1
    if start < len(units):
        if groups and _estimate(units[groups[-1][0] :]) <= max_tokens:
            groups[-1] = (groups[-1][0], len(units))
        else:
            groups.append((start, len(units)))
    exact = spans.count_runs([*groups, (0, len(units))])
    blocks = [
        Block(
            index=i,
            text=spans.text(a, b),
            tokens=n,
            joiner=units[a].joiner if i else "",
            paragraphs=b - a,
            split=any(u.split for u in units[a:b]),
        )
        for i, ((a, b), n) in enumerate(zip(groups, exact))
    ]
    return blocks, exact[-1]


def join_blocks(blocks: Sequence[Block]) -> str:
    """The exact text the blocks came from (first block's joiner is dropped)."""
    if not blocks:
        return ""
    return blocks[0].text + "".join(b.joiner + b.text for b in blocks[1:])


def validate_boundaries(n_blocks: int, starts: Sequence[int]) -> None:
    """Raise ``ValueError`` (with a message fit to feed back to an LLM) unless ``starts`` is a valid cut."""
    if n_blocks <= 0:
        raise ValueError("there are no blocks to segment")
    if not starts:
        raise ValueError("no scene boundaries were given; the first scene must start at block 0")
    if starts[0] != 0:
        raise ValueError(f"the first scene must start at block 0, not {starts[0]}")
    for a, b in zip(starts, starts[1:]):
        if b <= a:
            raise ValueError(f"scene starts must be strictly increasing: {a} is followed by {b}")
    if starts[-1] >= n_blocks:
        raise ValueError(f"scene start {starts[-1]} is out of range: the last block is {n_blocks - 1}")


def apply_boundaries(blocks: Sequence[Block], starts: Sequence[int]) -> list[list[Block]]:
    """Cut blocks into atomic scenes at the given start indices (0 first, strictly increasing)."""
    validate_boundaries(len(blocks), list(starts))
    ends = list(starts[1:]) + [len(blocks)]
    return [list(blocks[a:b]) for a, b in zip(starts, ends)]


def merge_scenes(
    atomic: Sequence[Sequence[Block]], counter: TokenCounter, *, max_tokens: int = 3000
) -> list[list[Block]]:
    """Greedy merge of consecutive atomic scenes while the merged text stays <= ``max_tokens``.

    An atomic scene that is itself over the limit is cut at block boundaries, so every returned
    scene fits (blocks never exceed the limit). Token counts are checked exactly at the end.
    """
    return [blocks for blocks, _ in merge_scenes_counted(atomic, counter, max_tokens=max_tokens)]


def merge_scenes_counted(
    atomic: Sequence[Sequence[Block]], counter: TokenCounter, *, max_tokens: int = 3000
) -> list[tuple[list[Block], int]]:
    """:func:`merge_scenes` with the exact token count of each scene's text, from the same check.

    Scene counts are derived from the block counts (see the module docs), so each block's ``tokens`` must
    be this counter's count of its text, as :func:`make_blocks` (and a run fingerprinted by the
    tokenizer's name) gives them.
    """

    def est(bs: Sequence[Block]) -> int:
        return sum(b.tokens for b in bs) + max(0, len(bs) - 1)

    scenes: list[list[Block]] = []
    cur: list[Block] = []
    for group in atomic:
        group = list(group)
        if est(group) > max_tokens:
            if cur:
                scenes.append(cur)
                cur = []
            scenes.extend(_cut_by_blocks(group, max_tokens))
            continue
        if cur and est(cur + group) > max_tokens:
            scenes.append(cur)
            cur = []
        cur = cur + group
    if cur:
        scenes.append(cur)
    flat = [b for s in scenes for b in s]
    spans = SpanCounter(counter, [b.text for b in flat], [b.joiner for b in flat], [b.tokens for b in flat])
    runs: list[tuple[int, int]] = []
    for s in scenes:
        start = runs[-1][1] if runs else 0
        runs.append((start, start + len(s)))
    out: list[tuple[list[Block], int]] = []
    for s, (a, _), n in zip(scenes, runs, spans.count_runs(runs)):
        if n <= max_tokens:
            out.append((s, n))
        else:
            out.extend(_cut_exact(s, a, spans, max_tokens))
    return out


def _cut_by_blocks(blocks: list[Block], max_tokens: int) -> list[list[Block]]:
    """Greedy cut of consecutive blocks by the estimate (block counts + one token per join)."""
    out: list[list[Block]] = []
    cur: list[Block] = []
    for b in blocks:
        cand = cur + [b]
        if cur and sum(x.tokens for x in cand) + len(cand) - 1 > max_tokens:
            out.append(cur)
            cur = [b]
        else:
            cur = cand
    if cur:
        out.append(cur)
    return out


def _cut_exact(blocks: list[Block], offset: int, spans: SpanCounter, max_tokens: int) -> list[tuple[list[Block], int]]:
    """Greedy cut of consecutive blocks (``spans`` pieces from ``offset`` on) by exact counts."""
    out: list[tuple[list[Block], int]] = []
    start = 0
    size = spans.count(offset, offset + 1)
    for k in range(1, len(blocks)):
        cand = spans.count(offset + start, offset + k + 1)
        if cand > max_tokens:
            out.append((blocks[start:k], size))
            start = k
            size = spans.count(offset + k, offset + k + 1)
        else:
            size = cand
    out.append((blocks[start:], size))
    return out

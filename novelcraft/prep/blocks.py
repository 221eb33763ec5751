"""Deterministic part of stage 5: paragraphs -> token-budgeted blocks -> atomic scenes -> semantic scenes.

Invariant kept by every function here: joining the pieces (with each block's ``joiner``) reproduces the
input text exactly - no paragraph is lost, duplicated or truncated. Over-long paragraphs are split at
sentence boundaries (then at word boundaries as a last resort), never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..models import Block
from ..tokens import TokenCounter

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


def _pack(pieces: list[str], joiners: list[str], counts: list[int], max_tokens: int) -> list[tuple[str, str]]:
    """Greedy packing of consecutive pieces into (joiner, text) runs whose estimate stays <= max_tokens."""
    runs: list[tuple[str, str]] = []
    cur_text, cur_join, cur_tok = "", "", 0
    for piece, join, tok in zip(pieces, joiners, counts):
        if cur_text and cur_tok + tok + 1 > max_tokens:
            runs.append((cur_join, cur_text))
            cur_text, cur_join, cur_tok = piece, join, tok
        elif cur_text:
            cur_text, cur_tok = cur_text + join + piece, cur_tok + tok + 1
        else:
            cur_text, cur_join, cur_tok = piece, join, tok
    if cur_text:
        runs.append((cur_join, cur_text))
    return runs


def split_long_paragraph(paragraph: str, counter: TokenCounter, max_tokens: int) -> list[tuple[str, str]]:
    """Split one paragraph into (joiner, piece) runs of at most ``max_tokens``: sentences first, then words.

    The first joiner is ``''``; ``''.join(j + p)`` equals the paragraph.
    """
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
        for k, (wj, wt) in enumerate(_pack(w_text, w_join, w_counts, max_tokens)):
            pieces.append(wt)
            piece_joiners.append(join if k == 0 else wj)
            piece_counts.append(counter.count(wt))
    runs = _pack(pieces, piece_joiners, piece_counts, max_tokens)
    return [("" if i == 0 else j, t) for i, (j, t) in enumerate(runs)]


def paragraph_units(text: str, counter: TokenCounter, max_tokens: int) -> list[Unit]:
    """Paragraph units of ``text`` (each paragraph counted once, in one batch), long ones split."""
    paras, joiners = split_paragraphs_exact(text)
    counts = counter.count_batch(paras)
    units: list[Unit] = []
    for para, join, tok in zip(paras, joiners, counts):
        if tok <= max_tokens:
            units.append(Unit(join, para, tok))
            continue
        pieces = split_long_paragraph(para, counter, max_tokens)
        piece_counts = counter.count_batch([p for _, p in pieces])
        for k, ((pj, pt), pc) in enumerate(zip(pieces, piece_counts)):
            units.append(Unit(join if k == 0 else pj, pt, pc, split=True))
    return units


def _estimate(units: Sequence[Unit]) -> int:
    # Each join adds at most one token with Qwen-style BPE (newlines pre-tokenize on their own).
    return sum(u.tokens for u in units) + max(0, len(units) - 1)


def make_blocks(text: str, counter: TokenCounter, *, min_tokens: int = 75, max_tokens: int = 1000) -> list[Block]:
    """Paragraphs -> blocks of >= ``min_tokens`` (small paragraphs merged forward), each <= ``max_tokens``.

    Only a chapter whose whole text is below ``min_tokens`` yields a smaller block. Block token counts
    are exact (one batch encode of the block texts).
    """
    text = text.strip()
    if not text:
        return []
    units = paragraph_units(text, counter, max_tokens)
    groups: list[list[Unit]] = []
    cur: list[Unit] = []
    for u in units:
        if cur and _estimate(cur + [u]) > max_tokens:
            groups.append(cur)
            cur = []
        cur.append(u)
        # the estimate can overshoot by the join tokens, so confirm the minimum with an exact count
        if _estimate(cur) >= min_tokens and (len(cur) == 1 or counter.count(_join_units(cur)) >= min_tokens):
            groups.append(cur)
            cur = []
    if cur:
        if groups and _estimate(groups[-1] + cur) <= max_tokens:
            groups[-1].extend(cur)
        else:
            groups.append(cur)
    texts = [_join_units(g) for g in groups]
    exact = counter.count_batch(texts)
    return [
        Block(
            index=i,
            text=t,
            tokens=n,
            joiner=g[0].joiner if i else "",
            paragraphs=len(g),
            split=any(u.split for u in g),
        )
        for i, (g, t, n) in enumerate(zip(groups, texts, exact))
    ]


def _join_units(units: Sequence[Unit]) -> str:
    return units[0].text + "".join(u.joiner + u.text for u in units[1:])


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
    """:func:`merge_scenes` with the exact token count of each scene's text, from the same check."""

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
    exact = counter.count_batch([join_blocks(s) for s in scenes])
    out: list[tuple[list[Block], int]] = []
    for s, n in zip(scenes, exact):
        if n <= max_tokens:
            out.append((s, n))
        else:
            out.extend((piece, counter.count(join_blocks(piece))) for piece in _cut_by_blocks(s, max_tokens, counter))
    return out


def _cut_by_blocks(blocks: list[Block], max_tokens: int, counter: TokenCounter | None = None) -> list[list[Block]]:
    out: list[list[Block]] = []
    cur: list[Block] = []
    for b in blocks:
        cand = cur + [b]
        size = counter.count(join_blocks(cand)) if counter else sum(x.tokens for x in cand) + len(cand) - 1
        if cur and size > max_tokens:
            out.append(cur)
            cur = [b]
        else:
            cur = cand
    if cur:
        out.append(cur)
    return out

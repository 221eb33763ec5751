"""Exact token counts of joined texts from the counts of their parts (:class:`SpanCounter`).

The build counts each paragraph once and derives the counts of blocks, scenes and chapters, which are
runs of paragraphs joined by separators. Token counts are not additive across a join in general
(``'said "hi."' + '\\n\\n'`` pre-tokenizes as one piece ``'."\\n\\n'``: 4 tokens, 5 apart;
``'\\t' + ' \\n'`` is one token, two apart), so the derivation rests on split points that are provably
neutral, for a tokenizer for which :func:`~novelcraft.tokens.counter.splits_at_spaces` holds: NFC or no
normalizer, the Qwen2/Qwen3 pre-tokenizer pattern
(:data:`~novelcraft.tokens.counter.QWEN2_PRETOKENIZE_PATTERN`) followed by a byte-level step, a plain
BPE model, encode without truncation or padding, and no added token that holds whitespace, starts with a
letter or digit, or strips whitespace.

    **Lemma.** If ``0 <= q < len(s) - 1``, ``s[q] == " "`` and ``s[q + 1]`` is a letter or a digit
    (``str.isalnum``: Unicode categories L and N), then ``count(s) == count(s[:q]) + count(s[q:])``.

*Proof.* Added tokens are cut out of the raw text first (leftmost, longest); none holds a space and none
starts with a letter or a digit, so none covers ``q`` or starts at ``q + 1``, and a match at a position
before ``q`` never reads ``q``: the segments of ``s`` are those of ``s[:q]`` and of ``s[q:]``, the one
around ``q`` split at ``q``, with ``s[q + 1]`` in it. Within it, NFC leaves the cut alone:
U+0020 is a starter that no canonical mapping involves, so it neither decomposes nor composes with a
neighbour and ``NFC(t) == NFC(t[:q]) + NFC(t[q:])``; after the space the normalized text starts with the
normal form of ``s[q + 1]``'s cluster, which is not whitespace (no canonical mapping of a letter or digit
starts with whitespace; every whitespace character is in Z or Cc, in every Unicode version). So the
normalized text has a space at the cut followed by a non-whitespace character ``c``. No pre-token
starting before the cut reaches past it: the contractions hold no space;
``[^\\r\\n\\p{L}\\p{N}]?\\p{L}+`` and `` ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*`` hold a space only as their first
character; ``\\p{N}`` is one character; ``\\s*[\\r\\n]+`` would need a line break after the space;
``\\s+(?!\\S)`` cannot take the space, since ``c`` is neither whitespace nor absent; and ``\\s+`` is tried
only where ``\\s+(?!\\S)`` fails, which it does not at a whitespace run that ends just before the space.
Matches starting before the cut are the same in ``s[:q]``: the only look-around, ``(?!\\S)``, sees the
space in one and the end of the text in the other, neither ``\\S``, and a path that reads the cut fails
in both. Every character is matched by some alternative, so the scan restarts at the cut, where,
without look-behind or anchors, it proceeds exactly as at the start of ``s[q:]``. The pre-tokens of
``s`` are those of ``s[:q]`` followed by those of ``s[q:]``; the byte-level step and the BPE model
take each pre-token on its own, so the counts add. ∎

So a text cut at such points (*cut spaces*) is counted exactly from its pieces: the run of paragraphs
``p_i j p_{i+1} ... p_k`` splits at the first and the last cut space of every paragraph that has one;
what lies between those points inside one paragraph is its count minus its head and tail, and only the
short stretches across each join (a paragraph's last word, the separator, the next paragraph's first
word, or whole paragraphs without a cut space such as ``"Yes."``) are encoded again. Counters for which
the lemma is not established (other pre-tokenizers, the word estimate) get every run counted in full.
The lemma is checked by property tests on random texts and on every chapter of the test corpus.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from .counter import TokenCounter


def cut_spaces(text: str) -> tuple[int, int] | None:
    """(first, last) index of a cut space of ``text`` (see the lemma above), or None when it has none."""
    n = len(text)
    q = text.find(" ")
    while 0 <= q < n - 1 and not _cuts(text[q + 1]):
        q = text.find(" ", q + 1)
    if q < 0 or q >= n - 1:
        return None
    last = text.rfind(" ", q, n - 1)
    while last > q and not _cuts(text[last + 1]):
        last = text.rfind(" ", q, last)
    return q, last


def _cuts(after: str) -> bool:
    """Whether a space followed by ``after`` is a cut space."""
    return after.isalnum()


class SpanCounter:
    """Exact token counts of runs of consecutive pieces of one text, derived from each piece's own count.

    ``pieces[i]`` follows ``joiners[i]`` (``joiners[0]`` is not used), and the run ``[i, k)`` is the text
    ``pieces[i] + joiners[i+1] + pieces[i+1] + ... + pieces[k-1]``; ``counts[i]`` is the exact count of
    ``pieces[i]``. With a counter for which the lemma holds (``splits_at_spaces``), a run is
    cut at the first and last cut space of each piece: the middle of a piece is its count minus the
    counts of its head and tail, and only the stretches between cut points across joins are encoded
    (short, unless pieces without any cut space follow each other). Other counters count every run in
    full. :meth:`encoded_chars` tells how much text the derivation encoded.
    """

    def __init__(self, counter: TokenCounter, pieces: Sequence[str], joiners: Sequence[str], counts: Sequence[int]):
        if not (len(pieces) == len(joiners) == len(counts)):
            raise ValueError("pieces, joiners and counts must have the same length")
        self.counter = counter
        self.pieces = list(pieces)
        self.joiners = list(joiners)
        self.counts = list(counts)
        self.derived = bool(getattr(counter, "splits_at_spaces", False))
        self._cache: dict[tuple[int, int, int, int], int] = {}
        self.encoded_chars = 0
        if self.derived:
            self._prepare()

    def _prepare(self) -> None:
        spaces = [cut_spaces(p) for p in self.pieces]
        #: indices of pieces holding a cut space, and (first, last) of each
        self.anchors = [i for i, s in enumerate(spaces) if s is not None]
        self.cuts = {i: s for i, s in enumerate(spaces) if s is not None}
        heads = [self.pieces[i][: self.cuts[i][0]] for i in self.anchors]
        tails = [self.pieces[i][self.cuts[i][1] :] for i in self.anchors]
        bridges = [self._text(a, self.cuts[a][1], b, self.cuts[b][0]) for a, b in zip(self.anchors, self.anchors[1:])]
        n = len(self.anchors)
        counted = self._count([*heads, *tails, *bridges])
        head_n, tail_n, bridge_n = counted[:n], counted[n : 2 * n], counted[2 * n :]
        self.head = dict(zip(self.anchors, head_n))
        self.tail = dict(zip(self.anchors, tail_n))
        # prefix sums over anchors: middles and the bridges between consecutive anchors
        self._mid_sum = [0]
        for i, h, t in zip(self.anchors, head_n, tail_n):
            self._mid_sum.append(self._mid_sum[-1] + self.counts[i] - h - t)
        self._bridge_sum = [0]
        for b in bridge_n:
            self._bridge_sum.append(self._bridge_sum[-1] + b)

    def _count(self, texts: list[str]) -> list[int]:
        self.encoded_chars += sum(len(t) for t in texts)
        return self.counter.count_batch(texts) if texts else []

    def _text(self, i: int, start: int, k: int, end: int | None) -> str:
        """Text from ``pieces[i][start:]`` through ``pieces[k][:end]`` (``end`` None: all of piece k)."""
        if i == k:
            return self.pieces[i][start:end]
        parts = [self.pieces[i][start:]]
        for m in range(i + 1, k):
            parts.append(self.joiners[m] + self.pieces[m])
        parts.append(self.joiners[k] + self.pieces[k][:end])
        return "".join(parts)

    def text(self, i: int, k: int) -> str:
        """The text of run ``[i, k)``."""
        return self._text(i, 0, k - 1, None)

    def count(self, i: int, k: int) -> int:
        """Exact tokens of run ``[i, k)``."""
        return self.count_runs([(i, k)])[0]

    def count_runs(self, runs: Sequence[tuple[int, int]]) -> list[int]:
        """Exact tokens of each run ``[i, k)`` (non-empty, within the pieces), in order; one batch encode."""
        for i, k in runs:
            if not 0 <= i < k <= len(self.pieces):
                raise ValueError(f"run [{i}, {k}) is not within the {len(self.pieces)} pieces")
        if not self.derived:
            out = [self.counts[i] if k - i == 1 else -1 for i, k in runs]
            todo = [j for j, v in enumerate(out) if v < 0]
            for j, n in zip(todo, self._count([self.text(*runs[j]) for j in todo])):
                out[j] = n
            return out
        plans = [self._plan(i, k) for i, k in runs]
        missing = sorted({key for _, keys in plans for key in keys if key not in self._cache})
        for key, n in zip(missing, self._count([self._text_key(key) for key in missing])):
            self._cache[key] = n
        return [base + sum(self._cache[key] for key in keys) for base, keys in plans]

    def _plan(self, i: int, k: int) -> tuple[int, list[tuple[int, int, int, int]]]:
        """(tokens known already, stretches still to count as (piece, start, piece, end)) of run ``[i, k)``."""
        if k - i == 1:
            return self.counts[i], []
        lo = bisect.bisect_left(self.anchors, i)
        hi = bisect.bisect_left(self.anchors, k)  # anchors[lo:hi] lie in the run
        if lo == hi:  # no cut space anywhere in the run
            return 0, [(i, 0, k - 1, -1)]
        first, last = self.anchors[lo], self.anchors[hi - 1]
        base = self._mid_sum[hi] - self._mid_sum[lo] + self._bridge_sum[hi - 1] - self._bridge_sum[lo]
        keys: list[tuple[int, int, int, int]] = []
        if first == i:
            base += self.head[i]
        else:
            keys.append((i, 0, first, self.cuts[first][0]))
        if last == k - 1:
            base += self.tail[last]
        else:
            keys.append((last, self.cuts[last][1], k - 1, -1))
        return base, keys

    def _text_key(self, key: tuple[int, int, int, int]) -> str:
        i, start, k, end = key
        return self._text(i, start, k, None if end < 0 else end)

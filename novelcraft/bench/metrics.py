"""Judge-free metrics of novels: pure functions over plain text, no model, no IO.

Each function documents its formula. Word tokens are lower-cased runs of letters, digits and
apostrophes (:func:`words`), so punctuation and Markdown never count as words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from ..names import TITLES

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (curly apostrophes folded to straight ones)."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The ``n``-grams of ``tokens``, in order (none when there are fewer than ``n`` tokens)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# --------------------------------------------------------------------------- length


def length_score(target: float, actual: float) -> float:
    """LongBench-Write length score S_l in [0, 100] (Bai et al. 2024, *LongWriter*, arXiv:2408.07055).

    With required length ``l`` (``target``) and output length ``l'`` (``actual``)::

        S_l = 100 * max(0, 1 - (l'/l - 1) / 3)   if l' > l
        S_l = 100 * max(0, 1 - (l/l' - 1) / 2)   if l' <= l

    Too long is penalised more gently than too short: 2x the target scores 66.7, half scores 50,
    4x and 1/3 both score 0. ``actual == 0`` scores 0.
    """
    if target <= 0:
        raise ValueError("target length must be positive")
    if actual <= 0:
        return 0.0
    if actual > target:
        return 100.0 * max(0.0, 1.0 - (actual / target - 1.0) / 3.0)
    return 100.0 * max(0.0, 1.0 - (target / actual - 1.0) / 2.0)


# --------------------------------------------------------------------------- repetition and diversity


def repetition_rate(tokens: Sequence[str], n: int = 4) -> float:
    """seq-rep-n (Welleck et al. 2019): share of n-grams that repeat an earlier n-gram of the same text.

    ``1 - |unique n-grams| / |n-grams|``; 0 when the text has fewer than ``n`` tokens.
    """
    grams = ngrams(tokens, n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def distinct_n(tokens: Sequence[str], n: int) -> float:
    """distinct-n (Li et al. 2016): ``|unique n-grams| / |n-grams|`` (0 for too short a text).

    It falls as texts get longer, so compare texts of similar length (scenes of one budget).
    """
    grams = ngrams(tokens, n)
    return len(set(grams)) / len(grams) if grams else 0.0


def windowed_distinct(tokens: Sequence[str], n: int = 1, window: int = 500) -> float | None:
    """Mean distinct-n over consecutive non-overlapping windows of ``window`` tokens (length-robust).

    The trailing partial window is dropped; ``None`` when the text is shorter than one window.
    """
    vals = [distinct_n(tokens[i : i + window], n) for i in range(0, len(tokens) - window + 1, window)]
    return sum(vals) / len(vals) if vals else None


def cross_scene_repetition(scene_tokens: Sequence[Sequence[str]], n: int = 5) -> list[float]:
    """Per scene, the share of its n-grams that already occurred in an earlier scene (0 for the first).

    Long n-grams (default 5) ignore stock phrases and catch text the writer copies from itself.
    """
    seen: set[tuple[str, ...]] = set()
    out: list[float] = []
    for toks in scene_tokens:
        grams = ngrams(toks, n)
        out.append(sum(1 for g in grams if g in seen) / len(grams) if grams else 0.0)
        seen.update(grams)
    return out


# --------------------------------------------------------------------------- cliché ("slop") index


@dataclass(frozen=True)
class SlopList:
    """Cliché words and phrases, as token tuples; ``{pron}`` in a phrase matches any possessive pronoun."""

    phrases: tuple[tuple[str, ...], ...]
    source: str = "<inline>"

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = "<inline>") -> SlopList:
        """Parse a phrase list: one phrase per line, ``#`` comments, ``*`` for any one word."""
        out: list[tuple[str, ...]] = []
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            toks: list[str] = []
            for t in line.lower().split():
                toks.extend([t] if t == "{pron}" else words(t))
            if toks:
                out.append(tuple(toks))
        return cls(tuple(dict.fromkeys(out)), source)


PRONOUNS = frozenset({"my", "your", "his", "her", "its", "our", "their"})


@lru_cache(maxsize=1)
def default_slop_list() -> SlopList:
    """The list shipped in ``novelcraft/resources/bench/slop.txt``."""
    ref = resources.files("novelcraft").joinpath("resources/bench/slop.txt")
    return SlopList.from_lines(
        ref.read_text(encoding="utf-8").splitlines(), source="novelcraft:resources/bench/slop.txt"
    )


def slop_hits(tokens: Sequence[str], slop: SlopList) -> Counter[str]:
    """Occurrences of each list entry in ``tokens`` (overlapping matches of different entries all count)."""
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for p in slop.phrases:
        by_first.setdefault(p[0], []).append(p)
    hits: Counter[str] = Counter()
    for i, tok in enumerate(tokens):
        for p in by_first.get(tok, ()):
            if i + len(p) > len(tokens):
                continue
            if all(q == t or (q == "{pron}" and t in PRONOUNS) for q, t in zip(p, tokens[i : i + len(p)])):
                hits[" ".join(p)] += 1
    return hits


def slop_index(tokens: Sequence[str], slop: SlopList) -> float:
    """Cliché hits per 1,000 words (0 for an empty text)."""
    return 1000.0 * sum(slop_hits(tokens, slop).values()) / len(tokens) if tokens else 0.0


# --------------------------------------------------------------------------- named entities


def _levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@dataclass
class EntityTrack:
    """Named-entity bookkeeping over a novel (see :func:`track_entities`)."""

    first_scene: dict[str, int] = field(default_factory=dict)
    last_scene: dict[str, int] = field(default_factory=dict)
    mentions: Counter[str] = field(default_factory=Counter)
    introduced_per_scene: list[int] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    drift_pairs: list[tuple[str, str]] = field(default_factory=list)
    main: list[str] = field(default_factory=list)


def _name_key(name: str) -> str:
    parts = name.split()
    return " ".join(p for p in parts if p.lower().rstrip(".") not in TITLES) or name


def track_entities(
    scene_names: Sequence[Counter[str]], *, min_mentions: int = 3, drop_after: float = 0.5
) -> EntityTrack:
    """Who is introduced when, who disappears and which names drift.

    * **introduced** - per scene, names seen for the first time;
    * **main** - names with at least ``min_mentions`` mentions in at least two scenes;
    * **dropped** - main names whose last mention is before ``drop_after`` of the novel's scenes
      (a character set up and then forgotten);
    * **drift pairs** - two different main-or-frequent names (titles ignored) within edit distance 1
      (names of 4-6 letters) or 2 (7+ letters), such as ``Anna``/``Anne`` or ``Everhard``/``Everhart``,
      where one name is not simply a part of the other. A renamed character shows up here.
    """
    t = EntityTrack()
    scene_count: Counter[str] = Counter()
    for i, names in enumerate(scene_names, 1):
        new = 0
        for name, c in names.items():
            if name not in t.first_scene:
                t.first_scene[name] = i
                new += 1
            t.last_scene[name] = i
            t.mentions[name] += c
            scene_count[name] += 1
        t.introduced_per_scene.append(new)
    n = len(scene_names)
    t.main = sorted(
        (nm for nm, c in t.mentions.items() if c >= min_mentions and scene_count[nm] >= 2),
        key=lambda x: (-t.mentions[x], x),
    )
    if n >= 4:
        cutoff = drop_after * n
        # "Mr Everhard" is not dropped while "Ernest Everhard" is still around: a name lives as long as
        # any of its parts (titles aside)
        part_last: dict[str, int] = {}
        for nm, last in t.last_scene.items():
            for part in _name_key(nm).split():
                part_last[part] = max(part_last.get(part, 0), last)
        t.dropped = sorted(
            (nm for nm in t.main if max(part_last.get(p, 0) for p in _name_key(nm).split()) < cutoff),
            key=lambda x: t.first_scene[x],
        )
    frequent = [nm for nm, c in t.mentions.items() if c >= 2]
    keys: dict[str, list[str]] = {}
    for nm in frequent:
        keys.setdefault(_name_key(nm), []).append(nm)
    klist = sorted(keys)
    main_keys = {_name_key(nm) for nm in t.main}
    for i, a in enumerate(klist):
        for b in klist[i + 1 :]:
            # a part of the other name, or a plural/adjective form (America/American): not a drift
            if a in b.split() or b in a.split() or a.lower().startswith(b.lower()) or b.lower().startswith(a.lower()):
                continue
            if a not in main_keys and b not in main_keys:
                continue
            short = min(len(a), len(b))
            if short < 4 or abs(len(a) - len(b)) > 2:
                continue
            limit = 1 if short <= 6 else 2
            if a[0].lower() == b[0].lower() and _levenshtein(a.lower(), b.lower()) <= limit:
                t.drift_pairs.append((a, b))
    return t


# --------------------------------------------------------------------------- regurgitation


@dataclass
class ReferenceIndex:
    """Word n-grams of reference books (e.g. the training books) with their positions, for overlap audits."""

    n: int
    positions: dict[tuple[str, ...], list[int]]
    total_words: int
    names: tuple[str, ...] = ()

    @classmethod
    def build(
        cls, texts: Sequence[str], n: int = 8, *, names: Sequence[str] = (), max_positions: int = 16
    ) -> ReferenceIndex:
        """Index every word ``n``-gram of ``texts`` (positions are global over the concatenation; books are
        separated by a gap so no n-gram spans two books)."""
        positions: dict[tuple[str, ...], list[int]] = {}
        offset = 0
        for text in texts:
            toks = words(text)
            for i in range(len(toks) - n + 1):
                lst = positions.setdefault(tuple(toks[i : i + n]), [])
                if len(lst) < max_positions:
                    lst.append(offset + i)
            offset += len(toks) + n + 1
        return cls(n=n, positions=positions, total_words=offset, names=tuple(names))


def reference_overlap(tokens: Sequence[str], index: ReferenceIndex) -> tuple[float, int]:
    """(share of the text's n-grams found in the references, longest common word run).

    The longest run is the longest stretch of consecutive words of ``tokens`` that also occurs
    contiguously in one reference: n-gram matches are chained when both the text position and a
    reference position advance by one, so it is exact down to ``n`` words (shorter common runs count as 0).
    """
    n = index.n
    grams = ngrams(tokens, n)
    if not grams:
        return 0.0, 0
    hit = 0
    best = 0
    prev: dict[int, int] = {}
    for g in grams:
        pos = index.positions.get(g)
        cur: dict[int, int] = {}
        if pos:
            hit += 1
            for p in pos:
                cur[p] = prev.get(p - 1, 0) + 1
            best = max(best, max(cur.values()))
        prev = cur
    return hit / len(grams), (best + n - 1) if best else 0


# --------------------------------------------------------------------------- curves


def progress_bins(weights: Sequence[float], values: Sequence[float | None], bins: int = 10) -> list[float | None]:
    """Mean of ``values`` per progress bin: a scene falls in the bin of its midpoint's position in the
    novel (cumulative ``weights``, e.g. words). Scenes with value ``None`` are skipped; empty bins are ``None``."""
    total = float(sum(weights))
    sums = [0.0] * bins
    counts = [0] * bins
    pos = 0.0
    for w, v in zip(weights, values):
        mid = (pos + w / 2.0) / total if total > 0 else 0.0
        pos += w
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        b = min(bins - 1, int(mid * bins))
        sums[b] += v
        counts[b] += 1
    return [s / c if c else None for s, c in zip(sums, counts)]


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None (None when there are none)."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None

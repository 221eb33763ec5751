"""From heading candidates to the book's outline: which headings are chapters, which contain them.

1. **Families**: candidates of one label and number style (``CHAPTER I..``, bare roman numerals, ``[ n ]``,
   titles of one layout) are one family.
2. **Containment**: a family whose headings open runs of another family's headings (``BOOK ONE`` then
   ``CHAPTER I``) ranks above it; labels that contain by their meaning (volume > book/part > chapter; act >
   scene) agree with the order of the text.
3. **Chapter level**: the deepest level whose numbered families (numbers that go up by one, restarting
   under a container) cover most of the book's text; a book with no numbering is cut at its dominant titles.
   Headings below that level are sections inside a chapter; a container with text but no chapter below it
   (a story told in one piece) is a chapter itself; numbering that starts at 2 means the text before it is
   the unheaded first chapter.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from .candidates import Cand
from .document import Para
from .headings import RANK

Family = tuple


@dataclass
class Division:
    """A chapter (or a container, or matter) found in the text: ``paras[start:end]`` is its body."""

    start: int
    end: int
    heading: Cand | None
    role: str  # 'chapter' | 'container' | 'section'
    containers: list[Cand] = field(default_factory=list)
    implied: bool = False  # an unheaded first chapter


@dataclass
class Outline:
    cands: list[Cand]
    depth: dict[Family, int]
    chapter_depth: int
    chapter_families: set[Family]
    notes: list[str] = field(default_factory=list)
    container_families: set[Family] = field(default_factory=set)


def _words(paras: list[Para], a: int, b: int) -> int:
    return sum(p.words for p in paras[a:b] if p.kind not in ("break", "figure"))


def sequence_quality(cands: list[Cand]) -> float:
    """Share of steps between consecutive numbers that go up by one or restart (at 1, or at 2 after an
    unheaded first one); 1.0 for a single heading."""
    nums = [c.head.number for c in cands if c.head is not None and c.head.number is not None]
    if len(nums) < 2:
        return 1.0
    good = sum(1 for a, b in zip(nums, nums[1:]) if b == a + 1 or b in (1, 2) or b == -1)
    return good / (len(nums) - 1)


def _outranks(la: str | None, lb: str | None) -> bool:
    """Label ``la`` contains label ``lb`` by its meaning: a volume its books, a book its chapters. A prologue or
    an epilogue holds chapters or scenes at most, never acts or parts (a play's prologue precedes its act)."""
    if la not in RANK or lb not in RANK or RANK[la] >= RANK[lb]:
        return False
    return la not in ("prologue", "epilogue") or RANK[lb] >= 4


def rank_families(cands: list[Cand], paras: list[Para]) -> tuple[dict[Family, int], dict[Family, set[Family]]]:
    """Depth of every family (0 for the outermost) and the families found to contain each family."""
    live = [c for c in cands if not c.decoy]
    count = collections.Counter(c.family for c in live)
    parents: dict[Family, set[Family]] = collections.defaultdict(set)
    follows: collections.Counter[tuple[Family, Family]] = collections.Counter()
    restarts: dict[Family, set[Family]] = collections.defaultdict(set)
    restart_count: collections.Counter[Family] = collections.Counter()
    for a, b in zip(live, live[1:]):
        if a.family != b.family and _words(paras, a.end, b.i) <= 60:
            follows[(a.family, b.family)] += 1
    for a, b in zip(live, live[1:]):
        fa, fb = a.family, b.family
        if fa == fb or _words(paras, a.end, b.i) > 60:
            continue
        la, lb = fa[0], fb[0]
        # a labelled container opening numbers of a lower rank, or bare numbers ("BOOK ONE" / "I.", "EPILOGUE" / "I")
        by_label = _outranks(la, lb) or la in RANK and lb is None and RANK[la] <= 2
        against_label = la in RANK and lb in RANK and RANK[la] > RANK[lb]
        if against_label:
            continue
        if b.head is not None and b.head.number in (1, 2) and fa[0] == "title":
            # a title right before a chapter numbered 1 (or 2, the first being unheaded) opens a group of them,
            # when the numbers restart so more than once (once may be a play's cast list before its first act)
            restarts[fb].add(fa)
            restart_count[fb] += 1
            continue
        if by_label:
            parents[fb].add(fa)
        elif a.level is not None and b.level is not None and a.level != b.level:
            if a.level < b.level:  # markup says it: an h2 over an h3
                parents[fb].add(fa)
        elif 2 <= count[fa] < count[fb] and follows[(fa, fb)] >= max(2, 0.5 * count[fa]):
            # a container opens a run of its children most times it occurs, not once by chance
            parents[fb].add(fa)
    opened = collections.Counter(fa for fas in restarts.values() for fa in fas)
    for fb, fas in restarts.items():
        # numbers that restart after titles twice, or a title family that restarts numbers of two kinds
        parents[fb] |= {fa for fa in fas if restart_count[fb] >= 2 or opened[fa] >= 2}
    # label meaning orders families that never meet directly (a volume heading over a chapter heading)
    fams = list(count)
    for fa in fams:
        for fb in fams:
            if fa != fb and _outranks(fa[0], fb[0]) and count[fa] <= count[fb]:
                parents[fb].add(fa)
    depth: dict[Family, int] = {}

    def depth_of(f: Family, seen: frozenset = frozenset()) -> int:
        if f in depth:
            return depth[f]
        ps = [p for p in parents.get(f, ()) if p not in seen and p != f]
        d = 0 if not ps else 1 + max(depth_of(p, seen | {f}) for p in ps)
        depth[f] = d
        return d

    for f in fams:
        depth_of(f)
    return depth, parents


def ancestors(families: set[Family], parents: dict[Family, set[Family]]) -> set[Family]:
    """Every family that contains one of ``families``, directly or through others."""
    out: set[Family] = set()
    todo = list(families)
    while todo:
        for p in parents.get(todo.pop(), ()):
            if p not in out and p not in families:
                out.add(p)
                todo.append(p)
    return out


def _coverage(
    cands: list[Cand], families: set[Family], depth: dict[Family, int], paras: list[Para], start: int, end: int
) -> float:
    """Share of the text in ``paras[start:end]`` that lies in divisions opened by ``families``."""
    live = [c for c in cands if not c.decoy]
    total = _words(paras, start, end) or 1
    covered = 0
    level = min((depth[f] for f in families), default=0)
    for k, c in enumerate(live):
        if c.family not in families:
            continue
        stop = end
        for nxt in live[k + 1 :]:
            if nxt.family in families or depth.get(nxt.family, 99) <= level:
                stop = nxt.i
                break
        covered += _words(paras, c.end, stop)
    return covered / total


def choose_outline(cands: list[Cand], paras: list[Para], start: int, end: int) -> Outline:
    """Rank the families and decide the chapter level (see the module docstring)."""
    depth, parents = rank_families(cands, paras)
    for c in cands:
        c.depth = depth.get(c.family, 0)
    live = [c for c in cands if not c.decoy]
    by_family: dict[Family, list[Cand]] = collections.defaultdict(list)
    for c in live:
        by_family[c.family].append(c)
    notes: list[str] = []
    numbered = {
        f: cs
        for f, cs in by_family.items()
        if f[1] not in ("none",) and f[0] != "title" and any(c.numbered for c in cs)
    }
    good = {f for f, cs in numbered.items() if len(cs) >= 2 and sequence_quality(cs) >= 0.6}
    for f in sorted(set(numbered) - good, key=str):
        if len(numbered[f]) >= 2:
            notes.append(f"headings {numbered[f][0].text!r}... ({len(numbered[f])}) number no sequence: not chapters")
    best: tuple[int, set[Family]] | None = None
    for d in sorted({depth[f] for f in good}, reverse=True):
        fams = {f for f in good if depth[f] == d}
        if _coverage(cands, fams | {f for f in good if depth[f] > d}, depth, paras, start, end) >= 0.5:
            best = (d, fams)
            break
    if best is None and good:
        d = max(depth[f] for f in good)
        best = (d, {f for f in good if depth[f] == d})
    if best is None:
        titled = {f: cs for f, cs in by_family.items() if f not in numbered and len(cs) >= 2}
        if titled:
            f = max(titled, key=lambda x: _coverage(cands, {x}, depth, paras, start, end))
            best = (depth[f], {f})
    if best is None:
        return Outline(cands, depth, 0, set(), notes + ["no heading family divides the book"])
    return Outline(cands, depth, best[0], best[1], notes, ancestors(best[1], parents))

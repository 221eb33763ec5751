"""Cross-checks of a detected structure against what the book says of itself.

Each check returns warnings, one line each naming what disagrees, for the structure report and the run's
stats: chapter numbers that skip, contents entries not found among the chapters (in order), and
navigation entries (EPUB nav / NCX) at the chapter level that point at no chapter.
"""

from __future__ import annotations

from .candidates import Cand
from .document import Document
from .outline import Outline
from .units import Unit


def number_skips(units: list[Unit]) -> list[str]:
    """Chapter numbers that jump within one container ('CHAPTER VII' after 'CHAPTER V')."""
    out: list[str] = []
    prev: Cand | None = None
    prev_path: list[int] = []
    for u in units:
        c = u.cand
        if u.role != "chapter" or c is None or c.head is None or c.head.number is None or c.head.number < 0:
            continue
        path = [id(x) for x in u.containers]
        if (
            prev is not None
            and prev.head is not None
            and prev.head.number is not None
            and path == prev_path
            and prev.family == c.family
            and c.head.number not in (prev.head.number + 1, 1, 2)
        ):
            out.append(f"chapter numbers skip: {c.text!r} follows {prev.text!r}")
        prev, prev_path = c, path
    return out


def contents_disagree(cands: list[Cand], units: list[Unit], outline: Outline) -> list[str]:
    """Entries of the book's contents list (decoy headings of the chapter families) that are not found among
    the chapters, in their order."""
    entries = [c for c in cands if c.decoy and c.family in outline.chapter_families and c.numbered]
    if len(entries) < 3:
        return []
    chapters = [u.cand.head.number for u in units if u.role == "chapter" and u.cand is not None and u.cand.head]
    missing: list[str] = []
    pos = 0
    for e in entries:
        # in order, by number: titles in a contents list are often synopses or settings, not the heading's title
        number = e.head.number if e.head is not None else None
        try:
            pos = chapters.index(number, pos) + 1
        except ValueError:
            missing.append(e.text)
    if not missing:
        return []
    shown = ", ".join(repr(m) for m in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return [f"the contents list has {len(missing)} of {len(entries)} entries not found as chapters: {shown}"]


def navigation_disagrees(doc: Document, units: list[Unit]) -> list[str]:
    """EPUB navigation entries at the level of the chapters that point into the narrative but at no chapter or
    container: a chapter the structure missed, or one it split."""
    if not doc.toc:
        return []
    starts = {u.cand.i for u in units if u.role in ("chapter", "container") and u.cand is not None}
    narrative = [u for u in units if u.role == "chapter"]
    if not narrative:
        return []
    lo, hi = narrative[0].start, narrative[-1].end
    by_depth: dict[int, list[int]] = {}
    for e in doc.toc:
        if e.para is not None and lo <= e.para < hi:
            by_depth.setdefault(e.depth, []).append(e.para)
    # the chapter level of the navigation: the depth whose entries most often open a chapter
    depth = max(by_depth, key=lambda d: (sum(p in starts or p - 1 in starts for p in by_depth[d]), -d), default=None)
    if depth is None:
        return []
    hits = [p for p in by_depth[depth] if p in starts or p - 1 in starts]
    if len(hits) < 0.5 * len(by_depth[depth]):
        return []  # the navigation does not list the chapters
    labels = {e.para: e.label for e in doc.toc if e.depth == depth}
    missed = [labels[p] for p in by_depth[depth] if p not in starts and p - 1 not in starts]
    if not missed:
        return []
    shown = ", ".join(repr(m) for m in missed[:3]) + (f" and {len(missed) - 3} more" if len(missed) > 3 else "")
    return [f"{len(missed)} navigation entries point at no chapter: {shown}"]


def cross_checks(doc: Document, cands: list[Cand], units: list[Unit], outline: Outline) -> list[str]:
    """Every warning of the module, in order."""
    return number_skips(units) + contents_disagree(cands, units, outline) + navigation_disagrees(doc, units)

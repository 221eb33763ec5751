"""Stage 2 end to end: a :class:`Document` -> chapters with their containers, reference sections, a report.

Order of decisions: Gutenberg boilerplate; heading candidates; matter headings (preface, contents...);
the outline (chapter level, containers); then one walk over the headings that cuts the text into units and
gives each a role — chapter, container, matter, narrative section (prologue, finale), sub-section — and
finally the front matter before the narrative, the back matter after it, and inline residue.
"""

from __future__ import annotations

import re

from .assign import assign_units
from .boilerplate import find_boilerplate
from .candidates import Cand, find_candidates, paragraph_gap
from .checks import cross_checks
from .document import Document, Para
from .headings import normalize, smart_title
from .matter import content_kind, heading_kind, is_end_marker, type_kind
from .outline import Outline, choose_outline
from .sections import CleanBook, ReportItem, Section
from .units import Options, Unit
from .units import where as _where


def _units(doc: Document, cands: list[Cand], outline: Outline, start: int, end: int) -> list[Unit]:
    """Cut ``paras[start:end]`` at every heading that opens a unit; sub-section headings stay inside."""
    live = [c for c in cands if not c.decoy]
    units: list[Unit] = []
    pos = start
    stack: list[Cand] = []
    for c in live:
        role = _role(c, outline)
        if role == "sub":
            continue
        if units:
            units[-1].end = c.i
        elif c.i > pos:
            units.append(Unit(pos, c.i, None, "lead"))
        if role == "container":
            while stack and stack[-1].depth >= c.depth:
                stack.pop()
            stack.append(c)
        units.append(
            Unit(
                c.end,
                end,
                c,
                role,
                matter=getattr(c, "matter", None),
                containers=list(stack) if role != "container" else list(stack[:-1]),
            )
        )
        pos = c.end
    if not units:
        units.append(Unit(start, end, None, "lead"))
    units[-1].end = end
    return units


def paras_before(c: Cand) -> int:
    return getattr(c, "before", 0)


def _mark_back_matter(cands: list[Cand], outline: Outline, gap: int) -> None:
    """A heading after the last chapter whose kind never heads a section inside the chapters (a letter to the
    publisher, an afterword without its name) starts the back matter."""
    live = [c for c in cands if not c.decoy]
    chapter_at = [k for k, c in enumerate(live) if c.family in outline.chapter_families]
    if not chapter_at:
        return
    first, last = chapter_at[0], chapter_at[-1]
    inside = {c.family for c in live[first:last] if _role(c, outline) == "sub"}
    # it must stand out like the chapter headings do: as many blank lines before it, or a heading level as high
    chapter_cands = [live[k] for k in chapter_at]
    befores = sorted(paras_before(c) for c in chapter_cands)
    typical_before = befores[len(befores) // 2]
    levels = [c.level for c in chapter_cands if c.level is not None]
    for c in live[last + 1 :]:
        stands_out = (c.level is not None and levels and c.level <= min(levels)) or (
            c.level is None and paras_before(c) >= max(gap + 2, typical_before - 1)
        )
        if _role(c, outline) == "sub" and c.family not in inside and stands_out:
            c.matter = "other"  # type: ignore[attr-defined]
            c.notes.append("after the last chapter, of a kind no chapter contains: back matter")
            return


def _role(c: Cand, outline: Outline) -> str:
    if getattr(c, "matter", None):
        return "matter"
    if c.family in outline.chapter_families:
        return "chapter"
    if c.family in outline.container_families:
        return "container"
    if c.head is not None and c.head.narrative and not c.numbered:
        return "narrative"
    return "sub"


def structure_document(
    doc: Document, *, title: str | None = None, author: str | None = None, options: Options | None = None
) -> CleanBook:
    """Chapters, containers and reference sections of ``doc`` (see the module docstring)."""
    opts = options or Options()
    paras = doc.paras
    book = CleanBook(encoding=doc.encoding)
    bp = find_boilerplate(paras)
    if bp.header and bp.start:
        _reference(book, paras, 0, bp.start, "gutenberg", "Project Gutenberg header", "the Gutenberg header")
    if bp.footer:
        _reference(book, paras, bp.end, len(paras), "license", "Project Gutenberg licence", "the Gutenberg footer")
    cands = find_candidates(doc, bp.start, bp.end)
    if opts.heading_pattern:
        cands = _forced_headings(doc, cands, opts.heading_pattern, bp.start, bp.end)
    title_norm = _main_title(title)
    for c in cands:
        c.matter = None  # type: ignore[attr-defined]
        sem = type_kind(paras[c.i].types)
        if not c.numbered:
            kind = heading_kind(c.text)
            if kind is None and any(c.text.lower().startswith(w.lower()) for w in opts.extra_reference_titles):
                kind = "other"
            if kind is None and sem:
                kind = sem
            if kind is None and is_end_marker(c.text):
                kind = "end_marker"  # '[THE END OF VOLUME III]' closes a division, it does not open one
            if kind is None and title_norm and _names_book(_main_title(c.text), title_norm):
                kind = "half_title"
                if book.display_title is None and _letters(c.text) == _letters(title or ""):
                    # the same title in the book's own typography ('Alice’s', 'The Iron Heel')
                    book.display_title = smart_title(c.text.strip(" ."))
            c.matter = kind  # type: ignore[attr-defined]
        elif sem in ("contents", "gutenberg", "colophon", "license"):
            c.matter = sem  # type: ignore[attr-defined]
    _contents_entries(cands, paras)
    for c in cands:
        if c.decoy:
            book.report.append(
                ReportItem(
                    role="dropped", kind="not a heading", title=c.text[:60], where=_where(paras, c.i), reason=c.decoy
                )
            )
    structural = [c for c in cands if not getattr(c, "matter", None)]
    outline = choose_outline(structural, paras, bp.start, bp.end)
    if opts.heading_pattern:
        outline.chapter_families, outline.container_families = {("title", "forced", None)}, set()
        outline.notes.append(f"chapters cut at the recipe's heading pattern {opts.heading_pattern!r}")
    for n in outline.notes:
        book.report.append(ReportItem(role="note", reason=n))
    _mark_back_matter(cands, outline, paragraph_gap(paras[bp.start : bp.end]) if doc.format != "epub" else 0)
    units = _units(doc, cands, outline, bp.start, bp.end)
    assign_units(book, doc, units, outline, opts, title, author, cands)
    for warning in cross_checks(doc, cands, units, outline):
        book.report.append(ReportItem(role="warning", reason=warning))
    _number(book)
    return book


def _forced_headings(doc: Document, cands: list[Cand], pattern: str, start: int, end: int) -> list[Cand]:
    """The recipe's heading pattern for an odd book: the paragraphs it matches are the chapters, in one family;
    other candidates stay only as matter or sections."""
    rx = re.compile(pattern, re.I)
    by_i = {c.i: c for c in cands}
    out = [c for c in cands if not rx.search(c.text)]
    for i in range(start, end):
        p = doc.paras[i]
        if p.words <= 40 and rx.search(p.text):
            c = by_i.get(i) or Cand(i, i + 1, re.sub(r"\s+", " ", p.text.strip()), None, None, p.level, True, "forced")
            c.head, c.title, c.decoy = None, c.title, None
            c.layout, c.level = "forced", None
            out.append(c)
    return sorted(out, key=lambda c: c.i)


def _main_title(text: str | None) -> str:
    """A title without its subtitle or edition note: 'Crime and Punishment (translated by ...)' -> 'crime and
    punishment'."""
    t = normalize(text or "")
    t = re.split(r"\s*[(\[:;]|\s+or,?\s+|\s+by\s+", t)[0]
    return re.sub(r"[^\w ]+", "", t).strip()


def _contents_entries(cands: list[Cand], paras: list[Para]) -> None:
    """Headings inside a contents list are entries of it: after a 'Contents' heading, every short heading whose
    text up to the next heading is list lines only ('First Epoch' over its indented entries), and every heading
    with no text of its own right before a known entry ('INTRODUCTION' / 'CHAPTER I.'). The first other heading
    ends the list."""
    for k, c in enumerate(cands):
        if getattr(c, "matter", None) != "contents":
            continue
        for n in range(k + 1, len(cands)):
            nxt = cands[n]
            if nxt.decoy:
                continue
            stop = cands[n + 1].i if n + 1 < len(cands) else len(paras)
            body = [p for p in paras[nxt.i + 1 : stop] if p.kind != "break"]  # a merged title line is one too
            before_entry = n + 1 < len(cands) and bool(cands[n + 1].decoy)
            if len(nxt.text.split()) > 12:
                break
            if getattr(nxt, "matter", None) in ("illustrations", "characters", "contents"):
                break  # a list of its own
            if not body or getattr(nxt, "matter", None):
                if not before_entry or sum(p.words for p in body) > 12:
                    break
            elif content_kind(body, front=True, title=None, author=None) == "characters":
                break  # a cast list: 'John Worthing, J.P.: Mr. George Alexander.'
            elif not all(
                p.words <= 12 * p.lines
                and max(len(ln.split()) for ln in p.text.splitlines() or [""]) <= 12
                and (p.lines > 1 or p.words <= 12)
                for p in body
            ):
                break
            nxt.decoy = "an entry of the contents list"
            nxt.matter = None  # type: ignore[attr-defined]


def _letters(text: str) -> str:
    return re.sub(r"\W+", "", normalize(text))


def _names_book(heading: str, title: str) -> bool:
    """The heading is the book's title, or the title's head or tail ('Huckleberry Finn' of 'Adventures of
    Huckleberry Finn'), in two words or more."""
    if not heading:
        return False
    if heading == title:
        return True
    h, t = heading.split(), title.split()
    return 2 <= len(h) < len(t) and (t[: len(h)] == h or t[-len(h) :] == h)


def _reference(book: CleanBook, paras: list[Para], a: int, b: int, kind: str, heading: str, reason: str) -> None:
    body = [p.text for p in paras[a:b] if p.kind != "break" and p.text.strip()]
    if not body:
        return
    book.reference.append(Section(heading=heading, source_heading=heading, paragraphs=body, title=heading, kind=kind))
    book.report.append(
        ReportItem(
            role="reference",
            kind=kind,
            title=heading,
            words=sum(len(t.split()) for t in body),
            where=_where(paras, a),
            reason=reason,
        )
    )


def _number(book: CleanBook) -> None:
    for i, ch in enumerate(book.chapters, start=1):
        ch.heading = f"# Chapter {i}: {ch.title}" if ch.title else f"# Chapter {i}"

"""The walk that gives every unit of the book its place: front matter, a chapter, back matter.

* Before the first chapter: front matter, classified by its heading or its content - except an unheaded
  first chapter (the first numbered chapter is number 2), a prologue or prelude (the narrative's own
  opening, kept with the first chapter) and the containers of the first chapter.
* Between chapters: containers (their heading becomes the chapters' container path; a container with text
  but no chapter below it is a chapter), matter sections in mid-book (a dedication of volume II), narrative
  sections (an epilogue is a chapter; a finale closes the chapter before it).
* After the last chapter: from the first end marker or matter heading on, back matter.
"""

from __future__ import annotations

import re

from .builder import Builder, _words
from .candidates import Cand
from .document import Document, Para
from .headings import normalize, smart_title
from .matter import content_kind, is_end_marker
from .outline import Outline
from .sections import CleanBook
from .units import Options, Unit, container_display

#: narrative sections that join the chapter after them / before them instead of standing alone
JOIN_NEXT = {"prologue", "prelude", "chorus", "interlude"}
JOIN_PREVIOUS = {"finale", "postlude"}


def _first_number(units: list[Unit], k: int) -> int | None:
    c = units[k].cand
    return c.head.number if c is not None and c.head is not None else None


def assign_units(
    book: CleanBook,
    doc: Document,
    units: list[Unit],
    outline: Outline,
    opts: Options,
    title: str | None,
    author: str | None,
    cands: list[Cand],
) -> None:
    """Front matter, chapters, back matter from the units (see the module docstring); ``cands`` are all heading
    candidates, decoys included, which cut the front matter into its pieces."""
    b = Builder(book, doc, opts, title, author, cands)
    paras = doc.paras
    sizes = sorted(_words(paras, u.start, u.end) for u in units if u.role == "chapter")
    b.median_chapter_words = sizes[len(sizes) // 2] if sizes else 0.0
    chapters = [k for k, u in enumerate(units) if u.role == "chapter"]
    if not chapters:
        # no chapter heading at all: the narrative units (or everything that is not matter) make one chapter each
        chapters = [
            k
            for k, u in enumerate(units)
            if u.role in ("container", "narrative")
            and not u.matter
            and _words(paras, u.start, u.end) >= opts.min_chapter_words
        ]
        for k in chapters:
            units[k].role = "chapter"
        if not chapters:
            lead = [
                k
                for k, u in enumerate(units)
                if u.role == "lead" and _words(paras, u.start, u.end) >= opts.min_chapter_words
            ]
            for k in lead:
                units[k].role = "chapter"
            chapters = lead
    first, last = (chapters[0], chapters[-1]) if chapters else (len(units), -1)
    # the narrative opens earlier: containers of the first chapter, a prologue, an unheaded first chapter
    start = first
    while start > 0 and units[start - 1].role in ("container", "narrative") and not units[start - 1].matter:
        start -= 1
    implied_first = first < len(units) and _first_number(units, first) == 2
    if (
        implied_first
        and start > 0
        and units[start - 1].role in ("lead", "sub", "container")
        and _words(paras, units[start - 1].start, units[start - 1].end) >= opts.min_chapter_words
    ):
        units[start - 1].implied = True
        start -= 1
    state = "front"
    for k, u in enumerate(units):
        if k == start:
            state = "narrative"
        if state == "front":
            b.front(u)
            continue
        if state == "back":
            _back(b, u)
            continue
        after_last = k > last
        if u.role == "matter" and after_last and state == "narrative" and _closing_note(units, k, paras, opts):
            # 'NOTE' after the last chapter and before THE END: the author's last word, in the story's voice
            body = b.body(u.start, u.end, narrative=True)
            if book.chapters:
                book.chapters[-1].paragraphs.extend([f"**{u.cand.text if u.cand else ''}**", *body])
                b.joined(u, "note", body, "a note the end marker closes: joined to the last chapter")
                continue
        if u.role == "matter":
            if after_last:
                state = "back"
                _back(b, u)
            else:
                b.reference(
                    u.matter or "other", u.cand.text if u.cand else "", u.start, u.end, "matter between chapters"
                )
            continue
        end = _end_marker(paras, u.start, u.end) if k >= last else None
        stop = end if end is not None else u.end
        signed = _dateline_start(paras, u.start, stop) if k == last else stop
        if signed < stop:
            # the author's place and date under the last words ('Trieste-Zurich-Paris' / '1914-1921')
            b.reference("colophon", "", signed, stop, "the author's place and date after the last chapter")
            stop = signed
        if u.implied:
            b.chapter(
                None, u.start, stop, u.containers, title=None, reason="unheaded first chapter (the next is numbered 2)"
            )
        elif u.role == "chapter":
            b.chapter(u.cand, u.start, stop, u.containers)
        elif u.role == "narrative":
            _narrative(b, u, stop, after_last)
        elif u.role in ("container", "absorbed"):
            _container(b, units, k, stop, opts)
        elif u.role == "lead":
            if _words(paras, u.start, stop) >= opts.min_chapter_words:
                b.chapter(None, u.start, stop, [], reason="text before the first heading")
        if end is not None:
            state = "back"
            b.reference("end_marker", paras[end].text, end, end + 1, "end marker")
            if end + 1 < u.end:
                _back(b, Unit(end + 1, u.end, None, "lead"))
    if b.pending and book.chapters:
        book.chapters[-1].paragraphs.extend(b.pending)


_YEAR = re.compile(r"\b(?:1[5-9]\d\d|20\d\d)\b")
_DATELINE_SMALL = {"and", "of", "the", "on", "in", "at", "de", "la", "le", "am", "an", "im"}


def _dateline_start(paras: list[Para], a: int, stop: int) -> int:
    """Where a run of place-and-date lines closing ``paras[a:stop]`` begins (``stop`` if there is none): short
    lines of capitalised names and numbers, one of them a year."""
    k = stop
    while k - 1 > a:
        p = paras[k - 1]
        if p.kind == "break" or not p.text.strip():
            k -= 1
            continue
        tokens = re.findall(r"[\w'’]+", p.text)
        if not tokens or len(tokens) > 8 or p.text.strip().endswith(("?", "!", '"', "”")):
            break
        if not all(t[0].isupper() or t[0].isdigit() or t.lower() in _DATELINE_SMALL for t in tokens):
            break
        k -= 1
    if k < stop and any(_YEAR.search(paras[j].text) for j in range(k, stop)) and _words(paras, a, k) > 0:
        return k
    return stop


def _closing_note(units: list[Unit], k: int, paras: list[Para], opts: Options) -> bool:
    """Unit ``k`` is a prose section headed just 'NOTE' that the book's end marker follows."""
    u = units[k]
    if (
        u.cand is None
        or normalize(u.cand.text) not in ("note", "a note")
        or _words(paras, u.start, u.end) < opts.min_chapter_words
    ):
        return False
    nxt = units[k + 1] if k + 1 < len(units) else None
    return _end_marker(paras, u.start, u.end) is not None or (
        nxt is not None and nxt.cand is not None and is_end_marker(nxt.cand.text)
    )


def _end_marker(paras: list[Para], a: int, b: int) -> int | None:
    for k in range(a, b):
        if is_end_marker(paras[k].text):
            return k
    return None


def _narrative(b: Builder, u: Unit, stop: int, after_last: bool) -> None:
    kind = u.cand.head.narrative if u.cand and u.cand.head else None
    heading = f"**{u.cand.text}**" if u.cand else ""
    body = b.body(u.start, stop, narrative=True)
    if kind in JOIN_NEXT and not after_last:
        b.pending += [heading, *body] if heading else body
        b.joined(u, kind or "", body, f"{kind}: joined to the chapter after it")
    elif kind in JOIN_PREVIOUS and b.book.chapters:
        b.book.chapters[-1].paragraphs.extend([heading, *body])
        b.joined(u, kind or "", body, f"{kind}: joined to the chapter before it")
    else:
        b.chapter(
            u.cand,
            u.start,
            stop,
            u.containers,
            title=smart_title(u.cand.text.strip(" .")) if u.cand else None,
            reason=f"{kind or 'narrative'} section",
        )


def _first_child(units: list[Unit], k: int) -> tuple[Unit | None, Unit | None]:
    """(the first chapter below container ``k``, the container of the same or a higher rank that ends it)."""
    u = units[k]
    assert u.cand is not None
    for nxt in units[k + 1 :]:
        if nxt.role == "chapter":
            return nxt, None
        if nxt.role == "container" and nxt.cand is not None and nxt.cand.depth <= u.cand.depth:
            return None, nxt
    return None, None


def _container(b: Builder, units: list[Unit], k: int, stop: int, opts: Options) -> None:
    u = units[k]
    assert u.cand is not None
    if u.role == "absorbed":
        return
    child, ender = _first_child(units, k)
    words = _words(b.paras, u.start, stop)
    if child is None:
        nxt_child = (
            _first_child(units, units.index(ender))[0] if ender is not None and ender.role == "container" else None
        )
        number = nxt_child.cand.head.number if nxt_child and nxt_child.cand and nxt_child.cand.head else None
        if ender is not None and ender.cand is not None and ender.cand.depth == u.cand.depth and number == 2:
            # the numbering goes on from 2 after the next title: that title does not open a group, it sits inside
            # this container's unheaded first chapter
            ender.role = "absorbed"
            text = (
                b.body(u.start, stop, narrative=True)
                + [f"**{ender.cand.text}**"]
                + b.body(ender.start, ender.end, narrative=True)
            )
            b.pending += text
            b.chapter(
                None,
                ender.end,
                ender.end,
                u.containers + [u.cand],
                reason="unheaded first chapter (the next is numbered 2)",
            )
            return
        if words >= max(opts.min_chapter_words, 0.25 * b.median_chapter_words):
            b.chapter(
                u.cand,
                u.start,
                stop,
                u.containers,
                title=container_display(u.cand),
                reason="a container with no chapter below it is a chapter",
            )
        elif words:
            # too short to stand alone (a postscript, a subtitle): it stays with the text around it
            body = [f"**{u.cand.text}**", *b.body(u.start, stop, narrative=True)]
            if b.book.chapters and k > 0 and units[k - 1].role == "chapter":
                b.book.chapters[-1].paragraphs.extend(body)  # a postscript closes the chapter before it
            else:
                b.pending += body  # a heading's subtitle opens the chapter after it
        return
    number = child.cand.head.number if child.cand and child.cand.head else None
    if number == 2 and words >= opts.min_chapter_words:
        b.chapter(
            None, u.start, stop, u.containers + [u.cand], reason="unheaded first chapter (the next is numbered 2)"
        )
    elif words:
        # a part's epigraph or argument: it opens the part's first chapter
        b.pending += b.body(u.start, stop, narrative=True)


def _back(b: Builder, u: Unit) -> None:
    heading = u.cand.text if u.cand else ""
    if u.matter:
        b.reference(u.matter, heading, u.start, u.end, "back matter heading")
        return
    span = [p for p in b.paras[u.start : u.end] if p.kind != "break"]
    if u.cand is not None and is_end_marker(heading):
        b.reference("end_marker", heading, u.start, u.end, "end marker")
        return
    kind = content_kind(span, front=False, title=b.title, author=b.author) if span else "other"
    b.reference(kind, heading, u.start, u.end, "after the end of the narrative")

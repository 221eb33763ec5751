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

from .candidates import Cand
from .document import Document, Para
from .headings import normalize, smart_title
from .inline import clean_text, count_glued_notes, is_figure_residue, note_definition
from .matter import content_kind, heading_kind, is_end_marker, is_title_line
from .outline import Outline
from .sections import CleanBook, ReportItem, Section
from .units import Options, Unit, chapter_title, container_display
from .units import where as _where

#: the number or sign an EPUB note starts with ('[1]', '2.', '*')
_NOTE_MARK = re.compile(r"^\[?([\d*†‡§]{1,4})[\].]?\s+")

#: narrative sections that join the chapter after them / before them instead of standing alone
JOIN_NEXT = {"prologue", "prelude", "chorus", "interlude"}
JOIN_PREVIOUS = {"finale", "postlude"}


def _words(paras: list[Para], a: int, b: int) -> int:
    return sum(p.words for p in paras[a:b] if p.kind not in ("break", "figure"))


class _Builder:
    def __init__(
        self, book: CleanBook, doc: Document, opts: Options, title: str | None, author: str | None, cands: list[Cand]
    ) -> None:
        self.book, self.doc, self.paras, self.opts, self.cands = book, doc, doc.paras, opts, cands
        self.title, self.author = title, author
        self.glued = count_glued_notes(doc.paras) >= 3
        self.pending: list[str] = []  # paragraphs of a prologue waiting for the next chapter
        self.where_heading = ""  # the heading of the chapter being built: where its footnotes come from
        self.median_chapter_words = 0.0

    # -- text ---------------------------------------------------------------------------------------------

    def body(self, a: int, b: int, *, narrative: bool) -> list[str]:
        """Cleaned paragraphs of ``paras[a:b]``; in the narrative, residue out and footnotes to the notes."""
        out: list[str] = []
        for k in range(a, b):
            p = self.paras[k]
            if p.kind == "break":
                out.append("* * *")
                continue
            if narrative and is_figure_residue(p):
                self.book.residue["illustration markers"] = self.book.residue.get("illustration markers", 0) + 1
                continue
            if narrative and p.kind == "note":
                m = _NOTE_MARK.match(p.text)
                marker, text = (m.group(1), p.text[m.end() :].strip()) if m else ("", p.text)
                self.book.footnotes.append((self.where_heading, marker, text or p.text))
                continue
            if narrative and (note := note_definition(p.text)) is not None:
                self.book.footnotes.append((self.where_heading, note[0], note[1]))
                continue
            text, counts = clean_text(p.text, glued_notes=self.glued) if narrative else (p.text, {})
            for key, n in counts.items():
                self.book.residue[key] = self.book.residue.get(key, 0) + n
            if not text:
                continue
            if narrative and p.kind == "heading":
                text = f"**{text}**"
            out.append(text)
        while out and out[0] == "* * *":
            out.pop(0)
        while out and out[-1] == "* * *":
            out.pop()
        return out

    # -- sections -----------------------------------------------------------------------------------------

    def reference(self, kind: str, heading: str, a: int, b: int, reason: str) -> None:
        body = self.body(a, b, narrative=False)
        if kind == "title_page" and self.title:
            body = body or [heading]
        if not body and not heading:
            return
        self.add_reference(kind, heading, body or [heading], a, reason)

    def add_reference(self, kind: str, heading: str, paragraphs: list[str], at: int, reason: str) -> None:
        paragraphs = [t for t in paragraphs if t]
        if not paragraphs:
            return
        self.book.reference.append(
            Section(
                heading=heading or kind,
                source_heading=heading,
                paragraphs=paragraphs,
                title=smart_title(heading) if heading else kind.replace("_", " ").capitalize(),
                kind=kind,
            )
        )
        self.book.report.append(
            ReportItem(
                role="reference",
                kind=kind,
                title=heading[:80],
                words=sum(len(t.split()) for t in paragraphs),
                where=_where(self.paras, at),
                reason=reason,
            )
        )

    def chapter(
        self, cand: Cand | None, a: int, b: int, containers: list[Cand], *, title: str | None = None, reason: str = ""
    ) -> Section | None:
        self.where_heading = cand.text if cand is not None else ""
        paragraphs = self.pending + self.body(a, b, narrative=True)
        if not paragraphs or (sum(len(t.split()) for t in paragraphs) < 3):
            return None
        self.pending = []
        path = [container_display(c) for c in containers]
        sec = Section(
            heading="",
            source_heading=cand.text if cand else "",
            paragraphs=paragraphs,
            title=title if title is not None else chapter_title(cand),
            part=" / ".join(path) or None,
            containers=path,
        )
        self.book.chapters.append(sec)
        self.book.report.append(
            ReportItem(
                role="chapter",
                title=(sec.title or sec.source_heading or "")[:80],
                words=sum(len(t.split()) for t in paragraphs),
                where=_where(self.paras, cand.i if cand else a),
                reason=reason,
            )
        )
        return sec

    def front(self, u: Unit) -> None:
        """Front matter: cut at every heading inside it (a title page's lines, contents entries, the cast of a
        play are headings too), each piece classified by its heading or its content, neighbours of one kind
        joined into one section."""
        inner = [c for c in self.cands if u.start <= c.i < u.end and c is not u.cand]
        inner = sorted(inner + self._matter_lines(u, {c.i for c in inner}), key=lambda c: c.i)
        pieces: list[tuple[Cand | None, int, int]] = []
        for c, nxt in zip([u.cand, *inner], [*inner, None]):
            a = u.start if c is None or c is u.cand else c.end
            pieces.append((c, a, nxt.i if nxt is not None else u.end))
        out: list[tuple[str, str, list[str], int]] = []  # (kind, heading, paragraphs, first paragraph)
        for c, a, b in pieces:
            heading = c.text if c is not None else ""
            kind, b_own = self._front_kind(c, a, b)
            if kind in ("half_title", "title_page") and any(p.words > 14 for p in self.paras[a:b_own]):
                # a title over prose (a dedication, a poem under the half title): the prose is a piece of its own
                b_own = a
            body = self.body(a, b_own, narrative=False)
            if (
                c is not None
                and not body
                and kind not in ("half_title", "title_page", "contents")
                and b_own == b
                and not (out and out[-1][0] == kind)
            ):
                self.book.report.append(
                    ReportItem(
                        role="dropped",
                        kind=kind,
                        title=heading[:80],
                        where=_where(self.paras, c.i),
                        reason="a heading with no text",
                    )
                )
                continue
            if out and out[-1][0] == kind:
                out[-1][2].extend(([heading] if heading else []) + body)
            elif heading or body:
                out.append((kind, heading, body, c.i if c is not None else a))
            if b_own < b:  # the prose after a contents entry is a piece of its own
                rest = self.body(b_own, b, narrative=False)
                span = [p for p in self.paras[b_own:b] if p.kind != "break"]
                out.append((content_kind(span, front=True, title=self.title, author=self.author), "", rest, b_own))
        for kind, heading, body, at in out:
            self.add_reference(
                kind,
                heading,
                body or [heading],
                at,
                "before the first chapter" if kind not in ("contents",) else "the contents list",
            )

    def _list_end(self, a: int, b: int) -> int:
        """Where the list lines of a contents list in ``paras[a:b]`` end: at the first paragraph of prose, or
        the first one set further apart than the list's lines (a dedication after it), or in another file."""
        k, spacing = a, None
        while k < b:
            p = self.paras[k]
            if p.kind != "break":
                lines = max(p.lines, len(p.text.splitlines()))
                if p.words > 12 * lines or p.file != self.paras[a].file:
                    break
                if spacing is not None and p.before > max(spacing, 1):
                    break
                spacing = p.before if spacing is None else max(spacing, p.before)
            k += 1
        return k

    def _matter_lines(self, u: Unit, taken: set[int]) -> list[Cand]:
        """Lines of the front matter that name a section ('Contents', 'THE PREFACE') though nothing in the
        layout sets them apart (text with one line per paragraph): a contents heading, or one over prose."""
        out = []
        for k in range(u.start, u.end):
            p = self.paras[k]
            if k in taken or p.words > 6 or p.kind not in ("p", "heading"):
                continue
            kind = heading_kind(p.text)
            nxt = self.paras[k + 1] if k + 1 < u.end else None
            if kind == "contents" or (kind is not None and nxt is not None and nxt.words > 14):
                c = Cand(k, k + 1, p.text.strip(), None, None, p.level, False, layout="line")
                c.matter = kind  # type: ignore[attr-defined]
                out.append(c)
        return out

    def _front_kind(self, c: Cand | None, a: int, b: int) -> tuple[str, int]:
        """The kind of a front-matter piece, and where it ends (a contents entry ends with its list lines)."""
        heading = c.text if c is not None else ""
        if c is not None and getattr(c, "matter", None):
            kind = c.matter  # type: ignore[attr-defined]
            return kind, (self._list_end(a, b) if kind == "contents" else b)
        span = [p for p in self.paras[a:b] if p.kind != "break"]
        if (
            c is not None
            and is_title_line(heading, self.title, self.author)
            and content_kind(span, front=True, title=self.title, author=self.author)
            in ("other", "title_page", "epigraph")
        ):
            if not span or all(p.words <= 14 for p in span):
                return "title_page", b
        if c is not None and c.decoy:
            return "contents", self._list_end(a, b)
        kind = content_kind(
            ([self.paras[c.i]] if c is not None else []) + span, front=True, title=self.title, author=self.author
        )
        return kind, b


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
    b = _Builder(book, doc, opts, title, author, cands)
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
            body = [f"**{u.cand.text if u.cand else ''}**", *b.body(u.start, u.end, narrative=True)]
            if book.chapters:
                book.chapters[-1].paragraphs.extend(body)
                book.report.append(
                    ReportItem(
                        role="chapter",
                        kind="note",
                        title=u.cand.text if u.cand else "",
                        words=_words(paras, u.start, u.end),
                        where=_where(paras, u.start),
                        reason="a note the end marker closes: joined to the last chapter",
                    )
                )
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


def _narrative(b: _Builder, u: Unit, stop: int, after_last: bool) -> None:
    kind = u.cand.head.narrative if u.cand and u.cand.head else None
    heading = f"**{u.cand.text}**" if u.cand else ""
    body = b.body(u.start, stop, narrative=True)
    if kind in JOIN_NEXT and not after_last:
        b.pending += [heading, *body] if heading else body
        b.book.report.append(
            ReportItem(
                role="chapter",
                kind=kind or "",
                title=u.cand.text if u.cand else "",
                words=sum(len(t.split()) for t in body),
                where=_where(b.paras, u.start),
                reason=f"{kind}: joined to the chapter after it",
            )
        )
    elif kind in JOIN_PREVIOUS and b.book.chapters:
        b.book.chapters[-1].paragraphs.extend([heading, *body])
        b.book.report.append(
            ReportItem(
                role="chapter",
                kind=kind or "",
                title=u.cand.text if u.cand else "",
                words=sum(len(t.split()) for t in body),
                where=_where(b.paras, u.start),
                reason=f"{kind}: joined to the chapter before it",
            )
        )
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


def _container(b: _Builder, units: list[Unit], k: int, stop: int, opts: Options) -> None:
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


def _back(b: _Builder, u: Unit) -> None:
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

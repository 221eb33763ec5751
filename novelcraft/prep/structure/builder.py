"""The builder the structure walk writes through: cleaned text of a span, chapters, reference sections, and the
front matter cut into its pieces (a title page's lines, a contents list, a cast list, a preface...)."""

from __future__ import annotations

import re

from .candidates import Cand
from .document import Document, Para
from .headings import smart_title
from .inline import clean_text, count_glued_notes, is_figure_residue, note_definition
from .matter import content_kind, heading_kind, is_title_line
from .sections import CleanBook, ReportItem, Section
from .units import Options, Unit, chapter_title, container_display
from .units import where as _where

#: the number or sign an EPUB note starts with ('[1]', '2.', '*')
_NOTE_MARK = re.compile(r"^\[?([\d*†‡§]{1,4})[\].]?\s+")


def _words(paras: list[Para], a: int, b: int) -> int:
    return sum(p.words for p in paras[a:b] if p.kind not in ("break", "figure"))


class Builder:
    """Collects the chapters, reference sections and report of one book as the walk assigns its units."""

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

    def joined(self, u: Unit, kind: str, body: list[str], reason: str) -> None:
        """Report a narrative section joined to a chapter next to it (a prologue, a finale, a closing note)."""
        self.book.report.append(
            ReportItem(
                role="chapter",
                kind=kind,
                title=u.cand.text if u.cand else "",
                words=sum(len(t.split()) for t in body),
                where=_where(self.paras, u.start),
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

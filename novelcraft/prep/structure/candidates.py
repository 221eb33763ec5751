"""Heading candidates: the paragraphs that could open a chapter, a container or a section of matter.

A candidate is a heading element (EPUB ``h1``-``h6``, Markdown ``#``), a paragraph the navigation points at,
or - in plain text - a short paragraph that announces a number (``CHAPTER IV``, ``IV.``, ``[ 4 ]``,
``FIRST ACT``) or stands out by its layout (more blank lines before it than the book's paragraphs have,
centred, capitals). A number-only heading swallows the title line that follows it. Runs of headings of one
family with nothing between them (a contents list, a list of illustrations) are decoys and leave.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field

from .document import Document, Para
from .headings import Heading, is_caps, is_titleish, normalize, parse_heading
from .inline import is_figure_residue


@dataclass
class Cand:
    """A heading candidate at ``paras[i:end]`` (``end - i`` > 1 when a title line was merged in)."""

    i: int
    end: int
    text: str
    head: Heading | None
    title: str | None
    level: int | None
    strong: bool  # heading markup or a navigation entry
    layout: str  # the family key of unnumbered headings
    depth: int = 0
    before: int = 0  # blank lines before it (plain text)
    decoy: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def numbered(self) -> bool:
        return self.head is not None and self.head.number is not None

    @property
    def family(self) -> tuple[str | None, str, int | None]:
        """Headings of one family are one kind of division: same label and number style (and, in an EPUB,
        the same heading level); unnumbered titles of one layout."""
        if self.head is not None and (self.head.number is not None or self.head.label):
            label, style = self.head.family
            return label, style, self.level
        return "title", self.layout, self.level


def paragraph_gap(paras: list[Para]) -> int:
    """The number of blank lines that usually separates paragraphs (plain text)."""
    counts = collections.Counter(p.before for p in paras if p.kind == "p" and p.words > 12)
    return counts.most_common(1)[0][0] if counts else 1


def _short(p: Para, words: int = 12, lines: int = 2, chars: int = 160) -> bool:
    return p.words <= words and p.lines <= lines and len(p.text) <= chars


_ARGUMENT = re.compile(r"^\W*(?:the\s+)?(?:argument|synopsis)\W*\d*\W*$", re.I)


def _title_line(p: Para, text_format: bool) -> bool:
    """A line that names what a number heading announces: capitals, a heading, or a short title."""
    if p.kind == "heading":
        return p.words <= 30
    if not _short(p, 30, 3) or p.kind == "break":
        return False
    t = p.text.strip()
    if is_caps(t):
        return True
    # in an EPUB a title below its number is a heading, capitals, or marked as a title; an italic address
    # line under 'Letter 1' ('To Mrs. Saville, England.') is the letter's first line
    marked = any("title" in t for t in p.types)
    return not text_format and marked and is_titleish(t) and p.words <= 16


def find_candidates(doc: Document, start: int, end: int) -> list[Cand]:
    """Heading candidates in ``doc.paras[start:end]`` (subtitles merged, decoy runs marked)."""
    paras = doc.paras
    text_format = doc.format != "epub"
    gap = paragraph_gap(paras[start:end]) if text_format else 0
    out: list[Cand] = []
    i = start
    while i < end:
        p = paras[i]
        cand = _candidate(p, i, gap, text_format)
        if (
            cand is not None
            and text_format
            and cand.head is None
            and i > start
            and p.before <= 1
            and re.search(r"[\w,;:]$", paras[i - 1].text.strip())
        ):
            cand = None  # the text above runs on into it: a letter's signature ("your obedient servant," / NAME)
        if cand is None:
            i += 1
            continue
        j = i + 1
        # a number (or a bare label) alone takes the next line as its title: "I." / "THE EVE OF THE WAR."
        # (in plain text the title sits close under its number: no more blank lines before it than one)
        # (an illustration between the two, or what is left of one, or the label of an epic's argument does
        # not part them: "BOOK XXIV." / "ARGUMENT." / "THE REDEMPTION OF THE BODY OF HECTOR.")
        k = j
        while k < end and (paras[k].kind == "figure" or is_figure_residue(paras[k]) or _ARGUMENT.match(paras[k].text)):
            k += 1
        close = not text_format or paras[k].before <= 1 if k < end else False
        if not close and k + 1 < end:
            # or, far below it, the line stands alone between it and the first numbered heading inside it:
            # "BOOK II." / "OLD AND YOUNG." / "CHAPTER XIII."
            after = parse_heading(paras[k + 1].text.strip())
            close = after is not None and after.numbered and is_caps(paras[k].text)
        if cand.head is not None and not cand.head.title and k < end and close and _title_line(paras[k], text_format):
            nxt = paras[k].text.strip()
            parsed = parse_heading(nxt)
            if parsed is None or (paras[k].kind == "heading" and not parsed.numbered):
                cand.title, j = re.sub(r"\s+", " ", nxt), k + 1
        elif cand.head is None and j < end and re.match(r"^\(.*\)$", paras[j].text.strip()) and _short(paras[j], 14):
            cand.title, j = paras[j].text.strip(), j + 1  # "THE STORY BEGUN BY ..." / "(of Clement's Inn...)"
        cand.end = j
        cand.before = p.before
        out.append(cand)
        i = j
    _adopt_levels(out)
    _adopt_layout(out)
    _mark_decoy_runs(paras, out, end)
    return out


def _adopt_levels(cands: list[Cand]) -> None:
    """A numbered heading set as a bold paragraph ('**CHAPTER 2**') among its siblings marked up as ``h2``
    takes their level, so that it joins their family."""
    levels: dict[tuple, set[int]] = collections.defaultdict(set)
    for c in cands:
        if c.head is not None and c.head.label and c.level is not None:
            levels[c.head.family].add(c.level)
    for c in cands:
        if c.head is not None and c.head.label and c.level is None and len(levels.get(c.head.family, ())) == 1:
            c.level = next(iter(levels[c.head.family]))


def _adopt_layout(cands: list[Cand]) -> None:
    """A title on the first line of a file has no blank lines above it to measure: it takes the layout of the
    most common titles set like it (capitals, centring), so that the first story of a collection joins the
    others."""
    for c in cands:
        if c.layout.startswith("b?"):
            style = c.layout[2:]
            same = collections.Counter(
                x.layout
                for x in cands
                if x.layout[2:] == style and not x.layout.startswith("b?") and x.layout.startswith("b")
            )
            c.layout = same.most_common(1)[0][0] if same else f"b4{style}"


def _candidate(p: Para, i: int, gap: int, text_format: bool) -> Cand | None:
    if p.kind in ("break", "figure", "note") or is_figure_residue(p):
        return None
    text = p.text.strip()
    strong = p.kind == "heading" or bool(p.toc)
    one_line = re.sub(r"\s+", " ", text)
    if strong:
        if p.words > 40:
            return None
        head = parse_heading(one_line)
        return Cand(i, i + 1, one_line, head, head.title if head else None, p.level, True, layout=f"h{p.level or 0}")
    head = parse_heading(one_line) if _short(p, 60, 6, 400) else None
    if head is not None and head.label and head.number is not None and head.title and is_caps(head.title):
        pass  # "CHAPTER XXVII. WHEREIN IT IS SHOWN WHO MASTER PEDRO..." : a labelled number with a long capital title
    elif not _short(p, 30, 3):
        return None
    if head is not None and (head.numbered or head.label or head.narrative):
        if text_format and p.before < 1 and p.line > 1:
            return None
        if head.style in ("bracket", "dashed") and head.title and not is_caps(head.title):
            return None  # "[2] She was free.": a footnote, not a heading
        if head.title and p.words > 12 and not is_caps(head.title):
            return None  # "1. Some sentence that runs on": prose, not a heading
        return Cand(i, i + 1, one_line, head, head.title, None, False, layout="numbered")
    if not _short(p):
        return None
    first_line = text_format and p.line <= 1 and is_caps(one_line)  # nothing above it to stand apart from
    stands_out = p.before > gap or p.centered or (not text_format and is_caps(one_line)) or first_line
    if stands_out and is_titleish(one_line) and not re.search(r"[,;]$", one_line):
        layout = (
            f"b{'?' if first_line else min(p.before, 4)}{'c' if p.centered else ''}{'C' if is_caps(one_line) else ''}"
        )
        return Cand(i, i + 1, one_line, head, None, None, False, layout=layout)
    return None


def _mark_decoy_runs(paras: list[Para], cands: list[Cand], end: int) -> None:
    """Consecutive candidates of one family with (almost) no text between them: a contents list. And a numbered
    heading with almost no text that comes back later, same number and title, with its chapter: its entry in
    the contents."""

    def words_between(a: Cand, b_start: int) -> int:
        return sum(paras[k].words for k in range(a.end, b_start) if paras[k].kind != "break")

    later: dict[tuple, int] = {}  # heading -> words of its last occurrence's text
    next_of_family: dict[tuple, int] = {}
    for k in range(len(cands) - 1, -1, -1):
        c = cands[k]
        to_family = next_of_family.get(c.family, end)
        next_of_family[c.family] = c.i
        if c.head is None or c.head.number is None or not (c.title or "").strip():
            continue  # untitled numbers repeat in every part of a book: only a title identifies a chapter
        key = (c.family[:2], c.head.number, " ".join(re.sub(r"[^\w ]+", " ", normalize(c.title or "")).split()[:4]))
        # a contents entry says little before the next heading; its chapter says a lot before the next chapter
        told = words_between(c, cands[k + 1].i if k + 1 < len(cands) else end)
        if key in later and told < 250 and told < 0.25 * later[key]:
            c.decoy = "contents entry: the same heading comes back later with its text"
        else:
            later[key] = words_between(c, to_family)

    # a list of headings of any kinds, four or more with (almost) nothing between them: a contents list
    said = [words_between(c, cands[k + 1].i if k + 1 < len(cands) else end) for k, c in enumerate(cands)]
    k = 0
    while k < len(cands):
        m = k
        seen: set[tuple] = set()
        while m < len(cands) and said[m] < 40:
            c = cands[m]
            entry = (c.family, c.head.number if c.head else None, normalize(c.text)[:30])
            if entry in seen and m - k >= 4:
                break  # the list is over: the book itself starts again from its first heading
            seen.add(entry)
            m += 1
        if m - k >= 4:
            # the headings that lead into the text (a part, then its first chapter) are real: new kinds, or marked up
            tail = m
            while tail > k and (
                cands[tail - 1].strong or sum(1 for c in cands[k:m] if c.family == cands[tail - 1].family) == 1
            ):
                tail -= 1
            for c in cands[k:tail]:
                c.decoy = c.decoy or "contents list: a run of headings with no text between them"
        k = max(m, k + 1)
    k = 0
    while k < len(cands):
        run = [cands[k]]
        m = k + 1
        while m < len(cands) and cands[m].family == run[-1].family and words_between(run[-1], cands[m].i) < 25:
            a, b = run[-1].head, cands[m].head
            if any(normalize(c.text) == normalize(cands[m].text) for c in run) or (
                a is not None
                and b is not None
                and a.number is not None
                and b.number is not None
                and b.number <= a.number
            ):
                break  # the same heading again, or numbers going back: the list is over ("— III —" / "— I —")
            run.append(cands[m])
            m += 1
        if len(run) >= 3 or (len(run) == 2 and words_between(run[-1], cands[m].i if m < len(cands) else end) < 25):
            for c in run:
                c.decoy = "contents list: headings of one kind with no text between them"
        k = m if len(run) > 1 else k + 1

"""Stage 2 - clean: pure functions from pandoc/Gutenberg Markdown to chapters and reference sections.

Nothing here knows a particular title: every rule is about the shapes real books take (Gutenberg
headers and licenses, contents tables, footnote links, numbered or titled headings, front matter).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field

from ..strict import Record

# --------------------------------------------------------------------------- Gutenberg boilerplate

_START = re.compile(r"^[ \t]*(?:\\?\*){3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG[^\n]*$", re.I | re.M)
_END = re.compile(
    r"^[ \t]*(?:(?:\\?\*){3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG|END OF (?:THE |THIS )?PROJECT GUTENBERG'?S?"
    r"|#+\s*THE FULL PROJECT GUTENBERG LICENSE|START: FULL LICENSE)[^\n]*$",
    re.I | re.M,
)
_LICENSE_HINTS = ("project gutenberg", "gutenberg.org", "www.gutenberg")


def strip_gutenberg(md: str) -> str:
    """Drop the Project Gutenberg header (up to the START marker) and license (from the END marker)."""
    m = _START.search(md)
    if m:
        md = md[m.end() :]
    m = _END.search(md)
    if m:
        md = md[: m.start()]
    # Produced-by / transcriber credit lines that sit right after the START marker.
    paras = split_paragraphs(md)
    while paras and re.match(r"^\W*(produced by|e-?text prepared by|transcribed by)", paras[0], re.I):
        paras.pop(0)
    return "\n\n".join(paras)


# --------------------------------------------------------------------------- markup cleanup

_IMAGE = re.compile(r"\[?!\[(?:\\.|[^\]\\])*\]\([^)]*\)(?:\]\([^)]*\))?")
_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
# Footnote markers: "[^(\[5\])](#..fn-5)", "[\[5\]](#...)", "[^5]" (GFM), "[5](#..)"
_FN_MARK = re.compile(r"\[\^?\(?\\?\[?\s*(?:\d+|[*†‡§]|[ivxlcdm]+)\s*\\?\]?\)?\]\(#[^)]*\)|\[\^[\w-]+\](?!:)", re.I)
_FN_DEF_LINK = re.compile(r"^\[\\?\[?\s*(\d+|[*†‡§]|[ivxlcdm]+)\s*\\?\]?\]\(#[^)]*\)\s*(.*)$", re.I | re.S)
_FN_DEF_GFM = re.compile(r"^\[\^([\w-]+)\]:\s*(.*)$", re.S)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_ATTR = re.compile(r"\{#[^}]*\}|\{\.[^}]*\}")
_HR = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")
_UNESCAPE = re.compile(r"\\([\[\]#<>!'\"$|~^().+\-`{}=])")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs are separated by blank lines; whitespace-only paragraphs are dropped."""
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def is_internal_link_table(paragraph: str) -> bool:
    """A Markdown table (or list) made of links into the book: a table of contents."""
    lines = [ln for ln in paragraph.split("\n") if ln.strip()]
    if not lines:
        return False
    if all(_TABLE_LINE.match(ln) for ln in lines):
        return "](#" in paragraph or all(not re.sub(r"[|\-:\s]", "", ln) for ln in lines)
    link_lines = [ln for ln in lines if re.match(r"^\s*(?:[-*+]|\d+\.)?\s*\[[^\]]+\]\(#", ln)]
    return len(link_lines) == len(lines)


def extract_footnotes(paragraphs: Iterable[str]) -> tuple[list[str], list[tuple[str | None, str, str]]]:
    """Split paragraphs into (body paragraphs, [(heading, marker, footnote text)]).

    ``heading`` is the last heading before the note: books restart their numbering per chapter.
    """
    body: list[str] = []
    notes: list[tuple[str | None, str, str]] = []
    heading: str | None = None
    for p in paragraphs:
        h = _ATX.match(p) if "\n" not in p else None
        if h:
            heading = h.group(2).strip()
        m = _FN_DEF_LINK.match(p) or _FN_DEF_GFM.match(p)
        if m:
            notes.append((heading, m.group(1), m.group(2).strip()))
        else:
            body.append(p)
    return body, notes


def clean_inline(paragraph: str) -> str:
    """Remove footnote markers, images, links (keep their text), HTML, attributes and escapes."""
    p = _FN_MARK.sub("", paragraph)
    p = _IMAGE.sub("", p)
    p = _LINK.sub(lambda m: m.group(1), p)
    p = _HTML_TAG.sub("", p)
    p = _ATTR.sub("", p)
    p = re.sub(r"\\\n", "\n", p)  # hard line breaks (verse) become plain newlines
    p = re.sub(r"\\$", "", p)
    p = _UNESCAPE.sub(r"\1", p)
    p = _ZERO_WIDTH.sub("", p).replace("\u00a0", " ")
    p = "\n".join(re.sub(r"[ \t]+", " ", ln).strip() for ln in p.split("\n"))
    p = re.sub(r"(?<!\*)\*\*\*\*(?!\*)", "", p)  # empty bold left by removed content
    return re.sub(r"\n{2,}", "\n", p).strip()


def clean_paragraphs(paragraphs: Iterable[str]) -> list[str]:
    """Per-paragraph cleanup; drops contents tables, image-only and div-fence paragraphs."""
    out: list[str] = []
    for p in paragraphs:
        if is_internal_link_table(p):
            continue
        if p.strip().startswith(":::"):
            continue
        if _HR.match(p) or re.fullmatch(r"[\\*\s]+", p):
            out.append("* * *")
            continue
        if _TABLE_LINE.match(p.split("\n")[0]) and all(not re.sub(r"[|\-:\s]", "", ln) for ln in p.split("\n")):
            continue
        c = clean_inline(p)
        if c:
            out.append(c)
    return out


# --------------------------------------------------------------------------- headings

_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty first second third fourth fifth sixth seventh "
    "eighth ninth tenth eleventh twelfth"
).split()
_NUM = r"(?:\d+|[ivxlcdm]+|(?:" + "|".join(_NUMBER_WORDS) + r")(?:[- ](?:" + "|".join(_NUMBER_WORDS) + r"))?)"
_CHAPTER_RE = re.compile(
    rf"^(?P<label>chapter|chap\.|letter|stave|canto|section|fit)\s+(?P<num>{_NUM})\b\.?(?P<title>.*)$", re.I
)
_ROMAN_RE = re.compile(r"^(?P<num>[IVXLCDM]+|\d+)(?:\.|\s*$|\.?\s+[—–:-]?\s*)(?P<title>.*)$")
_CONTAINER_RE = re.compile(rf"^(?P<label>book|part|volume|vol\.)\s+(?P<num>{_NUM})\b\.?(?P<title>.*)$", re.I)
_END_RE = re.compile(r"^\W*(?:the end|finis|end of (?:the )?(?:book|volume|part)\b.*)\W*$", re.I)

# heading words -> reference kind (matched against the lowercased heading without punctuation)
REFERENCE_TITLES: list[tuple[str, str]] = [
    (r"^(?:a |the )?foreword\b", "foreword"),
    (r"^(?:the |author'?s? |authors )?preface\b", "preface"),
    (r"^(?:the )?introduction\b|^introductory\b", "introduction"),
    (r"^(?:the )?glossary\b", "glossary"),
    (r"^dramatis personae\b|^(?:list of |principal )?characters\b|^persons (?:of|in) the\b|^cast of\b", "characters"),
    (r"^etymology\b", "etymology"),
    (r"^extracts\b", "extracts"),
    (r"^(?:footnotes|endnotes)\b", "footnotes"),
    (r"^(?:authors? note|a note\b|notes?\b|editor'?s? note|translator'?s? note|transcriber'?s? notes?)", "notes"),
    (r"^appendi(?:x|ces)\b", "appendix"),
    (r"^(?:afterword|postscript)\b", "afterword"),
    (r"^dedicat(?:ion|ed)\b|^to the reader\b|^acknowledge?ments?\b", "dedication"),
    (r"^(?:table of )?contents\b|^illustrations\b|^list of illustrations\b", "front_matter"),
]


def _norm_heading(text: str) -> str:
    t = text.lower().replace("’", "'")
    t = re.sub(r"[^\w' ]+", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def reference_kind(heading: str, extra_titles: Iterable[str] = ()) -> str | None:
    """The reference kind of a heading ('foreword', 'glossary', ...) or ``None`` for narrative."""
    h = _norm_heading(heading)
    for pattern, kind in REFERENCE_TITLES:
        if re.search(pattern, h):
            return kind
    for word in extra_titles:
        if h.startswith(_norm_heading(word)):
            return "other"
    return None


_SMALL_WORDS = {
    "a",
    "an",
    "and",
    "as",
    "at",
    "but",
    "by",
    "for",
    "from",
    "in",
    "into",
    "of",
    "on",
    "or",
    "the",
    "to",
    "with",
}


def smart_title(text: str) -> str:
    """Title-case ALL-CAPS titles ('JACKSON’S ARM' -> 'Jackson’s Arm'); leave mixed case alone."""
    letters = [c for c in text if c.isalpha()]
    if not letters or any(c.islower() for c in letters):
        return text
    words = text.lower().split(" ")
    out = []
    for i, w in enumerate(words):
        if i > 0 and w in _SMALL_WORDS:
            out.append(w)
        else:
            j = next((k for k, c in enumerate(w) if c.isalpha()), None)
            out.append(w if j is None else w[:j] + w[j].upper() + w[j + 1 :])
    return " ".join(out)


def _strip_title(t: str) -> str:
    t = re.sub(r"^[\s.:;,—–\-]+", "", t).strip()
    t = re.sub(r"[\s.:;,—–\-]+$", "", t).strip()
    return t


@dataclass
class HeadingInfo:
    kind: str  # chapter | container | reference | end | other
    label: str | None = None
    number: str | None = None
    title: str | None = None
    reference_kind: str | None = None


def classify_heading(text: str, extra_reference_titles: Iterable[str] = ()) -> HeadingInfo:
    """Decide what a heading announces: a numbered chapter, a book/part, reference material, the end."""
    t = text.strip().strip("*_ ").strip()
    if _END_RE.match(t):
        return HeadingInfo("end")
    m = _CHAPTER_RE.match(t)
    if m:
        return HeadingInfo(
            "chapter", m.group("label").rstrip(".").lower(), m.group("num"), _strip_title(m.group("title")) or None
        )
    m = _CONTAINER_RE.match(t)
    if m:
        return HeadingInfo(
            "container", m.group("label").rstrip(".").lower(), m.group("num"), _strip_title(m.group("title")) or None
        )
    kind = reference_kind(t, extra_reference_titles)
    if kind:
        return HeadingInfo("reference", reference_kind=kind, title=t)
    m = _ROMAN_RE.match(t)
    if m and (m.group("num").isdigit() or len(m.group("num")) <= 7):
        return HeadingInfo("chapter", None, m.group("num"), _strip_title(m.group("title")) or None)
    return HeadingInfo("other", title=t)


_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def promote_heading_paragraphs(paragraphs: list[str]) -> list[str]:
    """Turn stand-alone 'CHAPTER I.' style paragraphs (plain-text books, bold EPUB headings) into headings.

    An ALL-CAPS short paragraph right after a promoted number-only heading becomes its title.
    """
    out: list[str] = []
    i = 0
    while i < len(paragraphs):
        p = paragraphs[i]
        bare = p.strip().strip("*_").strip()
        if (
            not p.startswith("#")
            and "\n" not in bare
            and len(bare.split()) <= 12
            and (_CHAPTER_RE.match(bare) or _CONTAINER_RE.match(bare))
        ):
            info = classify_heading(bare)
            heading = bare
            nxt = paragraphs[i + 1].strip().strip("*_").strip() if i + 1 < len(paragraphs) else ""
            if (
                info.title is None
                and nxt
                and "\n" not in nxt
                and len(nxt.split()) <= 10
                and not nxt.startswith("#")
                and nxt.upper() == nxt
                and any(c.isalpha() for c in nxt)
                and not _CHAPTER_RE.match(nxt)
            ):
                heading = f"{bare} {nxt}"
                i += 1
            out.append(f"## {heading}")
        elif (
            not p.startswith("#")
            and "\n" not in bare
            and len(bare.split()) <= 6
            and bare.upper() == bare
            and any(c.isalpha() for c in bare)
            and (_END_RE.match(bare) or reference_kind(bare))
        ):
            # ALL-CAPS 'PREFACE', 'GLOSSARY', 'THE END' lines of plain-text books
            out.append(f"## {bare}")
        else:
            out.append(p)
        i += 1
    return out


# --------------------------------------------------------------------------- structure


class Section(Record):
    """A chapter or reference section as found in the book, before token budgeting."""

    heading: str = Field(..., description="normalized heading line (chapters) or title (reference)")
    source_heading: str
    paragraphs: list[str]
    title: str | None = None
    part: str | None = None
    kind: str = Field("chapter", description="'chapter' or a reference kind")

    @property
    def text(self) -> str:
        if self.kind == "chapter":
            return "\n\n".join([self.heading, *self.paragraphs])
        return "\n\n".join(self.paragraphs)


class CleanBook(Record):
    """Stage 2 output (``02_clean.json``): chapters and reference sections of one book, in order."""

    chapters: list[Section] = Field(default_factory=list)
    reference: list[Section] = Field(default_factory=list)
    footnotes: list[tuple[str, str, str]] = Field(default_factory=list, description="(where, marker, text)")
    display_title: str | None = None


def _words(paragraphs: Iterable[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def _is_title_line(text: str, title: str | None, author: str | None) -> bool:
    n = _norm_heading(text)
    if not n:
        return True
    if n.startswith("by ") or n.startswith("the project gutenberg"):
        return True
    for ref in (title, author):
        if ref:
            r = _norm_heading(ref)
            if r and (n in r or r in n or n.split()[0:3] == r.split()[0:3]):
                return True
    return bool(re.search(r"\bedition\b|\bvolume\b|\billustrated\b|^or the\b|^or\b", n)) and len(n.split()) <= 8


def structure_book(
    paragraphs: list[str],
    *,
    title: str | None = None,
    author: str | None = None,
    min_chapter_words: int = 40,
    extra_reference_titles: Iterable[str] = (),
) -> CleanBook:
    """Split cleaned paragraphs (with ATX headings) into chapters and reference sections."""
    # 1. group into (heading, body) runs
    groups: list[tuple[str | None, int, list[str]]] = [(None, 0, [])]
    for p in paragraphs:
        m = _ATX.match(p) if "\n" not in p else None
        if m:
            groups.append((m.group(2).strip(), len(m.group(1)), []))
        else:
            groups[-1][2].append(p)

    infos = [classify_heading(h, extra_reference_titles) if h else HeadingInfo("preamble") for h, _, _ in groups]
    has_numbered = any(i.kind == "chapter" for i in infos)
    # The first chapter-like heading opens the narrative; before it is front matter.
    first_narrative = next((k for k, i in enumerate(infos) if i.kind == "chapter"), None)
    if first_narrative is None:
        first_narrative = next(
            (
                k
                for k, (h, _, body) in enumerate(groups)
                if infos[k].kind == "other"
                and not _is_title_line(h or "", title, author)
                and _words(body) >= min_chapter_words
            ),
            None,
        )
    book = CleanBook()
    # the H1 usually has the book's real capitalisation ("The Iron Heel" vs. metadata "The iron heel")
    display_title = next(
        (h for h, lvl, _ in groups if h and lvl == 1 and title and _norm_heading(h) == _norm_heading(title)), None
    )
    book.display_title = display_title
    part: str | None = None
    front: list[tuple[str | None, list[str]]] = []
    chapters: list[Section] = []
    reference: list[Section] = []

    def add_reference(kind: str, heading: str, body: list[str]) -> None:
        if body:
            reference.append(
                Section(
                    heading=heading,
                    source_heading=heading,
                    paragraphs=list(body),
                    title=smart_title(heading),
                    kind=kind,
                )
            )

    for k, ((heading, _lvl, body), info) in enumerate(zip(groups, infos)):
        in_front = first_narrative is None or k < first_narrative
        if info.kind == "end":
            if chapters and body:
                chapters[-1].paragraphs.extend(body)
            continue
        if info.kind == "reference":
            if info.reference_kind == "front_matter":
                front.append((None, body))  # contents page: the table is gone, keep any epigraph
            else:
                add_reference(info.reference_kind or "other", heading or "", body)
            continue
        if info.kind == "container":
            number = info.number.upper() if re.fullmatch("[ivxlcdm]+", info.number, re.I) else info.number
            part = " ".join(
                x for x in [f"{info.label.capitalize()} {number}", info.title and f"— {smart_title(info.title)}"] if x
            )
            if _words(body) >= min_chapter_words and not in_front:
                chapters.append(_chapter(heading or "", info, body, part))
            elif body and not in_front and chapters:
                chapters[-1].paragraphs.extend(body)
            elif body:
                front.append((heading, body))
            continue
        if in_front:
            if info.kind == "preamble" or _is_title_line(heading or "", title, author):
                front.append((None, [p for p in body if not _is_title_line(p, title, author) or len(p.split()) > 12]))
            else:
                front.append((heading, body))
            continue
        if info.kind == "chapter" or (info.kind == "other" and (_words(body) >= min_chapter_words or not has_numbered)):
            if info.kind == "other" and _is_title_line(heading or "", title, author) and not body:
                continue
            if not body and info.kind == "other":
                continue
            chapters.append(_chapter(heading or "", info, body, part))
        elif chapters:
            # a short titled sub-section inside a chapter: keep its heading as a bold line
            chapters[-1].paragraphs.extend(([f"**{heading}**"] if heading else []) + body)

    # front matter with real text (epigraph, untitled preface) becomes reference material
    for heading, body in front:
        body = [p for p in body if p != "* * *"]
        if _words(body) >= 8:
            kind = "epigraph" if _words(body) <= 150 and not heading else "front_matter"
            add_reference(kind, heading or ("Epigraph" if kind == "epigraph" else "Front matter"), body)

    # drop leading/trailing scene-break markers and empty chapters
    for ch in chapters:
        while ch.paragraphs and ch.paragraphs[0] == "* * *":
            ch.paragraphs.pop(0)
        while ch.paragraphs and ch.paragraphs[-1] == "* * *":
            ch.paragraphs.pop()
    chapters = [c for c in chapters if c.paragraphs]
    for i, ch in enumerate(chapters, start=1):
        ch.heading = f"# Chapter {i}: {ch.title}" if ch.title else f"# Chapter {i}"
    book.chapters = chapters
    book.reference = reference
    return book


def _chapter(source_heading: str, info: HeadingInfo, body: list[str], part: str | None) -> Section:
    if info.kind == "chapter" and info.label in (None, "chapter", "chap"):
        title = smart_title(info.title) if info.title else None
    elif info.kind in ("chapter", "container"):
        num = info.number.upper() if re.fullmatch("[ivxlcdm]+", info.number or "", re.I) else info.number
        base = f"{(info.label or '').capitalize()} {num}".strip()
        title = f"{base}: {smart_title(info.title)}" if info.title else base
    else:
        title = smart_title(_strip_title(source_heading)) or None
    return Section(heading="", source_heading=source_heading, paragraphs=list(body), title=title, part=part)


def clean_markdown(
    markdown: str,
    *,
    title: str | None = None,
    author: str | None = None,
    keep_footnotes: bool = True,
    min_chapter_words: int = 40,
    extra_reference_titles: Iterable[str] = (),
) -> CleanBook:
    """Full clean: Gutenberg boilerplate, markup, footnotes, headings -> :class:`CleanBook`."""
    md = markdown.replace("\r\n", "\n")
    md = strip_gutenberg(md)
    raw = split_paragraphs(md)
    body, notes = extract_footnotes(raw)
    paragraphs = promote_heading_paragraphs(clean_paragraphs(body))
    book = structure_book(
        paragraphs,
        title=title,
        author=author,
        min_chapter_words=min_chapter_words,
        extra_reference_titles=extra_reference_titles,
    )
    book.footnotes = [(h or "", marker, clean_inline(text)) for h, marker, text in notes if clean_inline(text)]
    if keep_footnotes and book.footnotes:
        lines: list[str] = []
        last: str | None = None
        for heading, marker, text in book.footnotes:
            if heading and heading != last:
                lines.append(f"**{clean_inline(heading)}**")
                last = heading
            lines.append(f"[{marker}] {text}")
        if lines:
            book.reference.append(
                Section(
                    heading="Footnotes",
                    source_heading="Footnotes",
                    paragraphs=lines,
                    title="Footnotes",
                    kind="footnotes",
                )
            )
    return book

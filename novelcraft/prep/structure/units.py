"""The pieces the structure walk passes around: options, units of text and how headings read as titles."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .candidates import Cand
from .document import Para
from .headings import smart_title


@dataclass
class Options:
    min_chapter_words: int = 40
    extra_reference_titles: tuple[str, ...] = ()
    keep_footnotes: bool = True
    heading_pattern: str | None = None  # a regex: paragraphs it matches are the chapter headings, nothing else is


@dataclass
class Unit:
    """``paras[start:end]`` opened by ``cand`` (None: text before the first heading)."""

    start: int
    end: int
    cand: Cand | None
    role: str
    matter: str | None = None
    containers: list[Cand] = field(default_factory=list)
    implied: bool = False


def chapter_title(c: Cand | None) -> str | None:
    """The title of a chapter opened by ``c``: 'Marley's Ghost' for 'STAVE I: MARLEY'S GHOST' keeps its label
    ('Stave I: Marley's Ghost'), a numbered chapter keeps only its title, a titled one its text."""
    if c is None:
        return None
    h = c.head
    title = smart_title(re.sub(r"\s+", " ", _plain(c.title)).strip(" .:")) if c.title else None
    if h is None or (h.number is None and not h.label):
        return smart_title(c.text.strip(" .")) or None
    if h.label in (None, "chapter") and h.number is not None:
        return title
    first = c.text.split(" — ")[0].split(":")[0].strip(" .")
    base = smart_title(first if len(first.split()) <= 4 else " ".join(first.split()[:2])).rstrip(" .")
    return f"{base}: {title}" if title and title.lower() not in base.lower() else base


def _plain(text: str) -> str:
    """A title without the emphasis marks around it: '*To Mrs. Saville, England.*' -> 'To Mrs. Saville, England.'"""
    return re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)", "", text).strip()


def container_display(c: Cand) -> str:
    text = smart_title(c.text.strip(" ."))
    if c.title and c.title not in c.text:
        text = f"{text} — {smart_title(c.title.strip(' .'))}"
    return text


def where(paras: list[Para], i: int) -> str:
    p = paras[i] if i < len(paras) else None
    if p is None:
        return ""
    loc = f"line {p.line}" if p.line else f"file {p.file}"
    return f"{loc}: {' '.join(p.text.split()[:8])}"

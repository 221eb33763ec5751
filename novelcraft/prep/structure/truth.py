"""Scoring a book's structure against a truth record (``tests/data/corpus/truth.json`` holds 25 of them).

A truth entry gives the chapter count, the first and last chapter headings with their containers
(``'PART ONE—The Old Buccaneer / 1 / The Old Sea-dog ...'``), and the first and last narrative words. Any
splitter's output - this package's, or a peer tool's - is scored as a list of :class:`ChapterText`, so the
structure benchmark compares them on equal terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import Field

from ...strict import Record
from .sections import CleanBook

#: what must never reach the narrative, by name
RESIDUE: dict[str, str] = {
    "illustration marker": r"\[(?:Illustration|Image|Figure)\b",
    "image file name": r"\b[\w-]+\.(?:jpe?g|png|gif|svg)\b",
    "image placeholder": r"(?m)^\d{4}m$",
    "page number": r"\[(?:Pg|Page|p\.)\s*\d+\]|\{\d+\}",
    "Gutenberg text": r"Project Gutenberg|gutenberg\.org|\*\*\* ?(?:START|END) OF",
    "control character": r"[\x80-\x9f]",
    "glued note number": r"[a-z]{3}[.,;:!?]\d{1,3}(?:\s|$)",
}
#: closing words a play may print after its last line ('Exeunt', 'TABLEAU'): allowed after the last words
END_SLACK_CHARS = 20


class TruthEntry(Record):
    """The structure of one book as a person established it."""

    file: str
    title: str
    author: str | None = None
    chapters: int = Field(..., ge=1)
    first_title: str
    last_title: str
    first_words: str
    last_words: str
    shape: list[str] = Field(default_factory=list)
    front_matter: list[str] = Field(default_factory=list)
    back_matter: list[str] = Field(default_factory=list)
    source: str | None = Field(None, description="where the file was taken from")
    source_commit: str | None = None
    counting: str | None = Field(None, description="how the chapters were counted")
    notes: str | None = None
    approx_words_in_file: int | None = None
    bytes: int | None = None


@dataclass
class ChapterText:
    """A chapter as any splitter gives it: the heading lines that name it (containers first) and its text."""

    headings: list[str]
    text: str


@dataclass
class StructureScore:
    """How a splitter's chapters compare with a truth entry; ``exact`` when every check holds."""

    chapters: int
    expected: int
    first_title: bool
    last_title: bool
    first_words: bool
    last_words: bool
    residue: dict[str, int] = field(default_factory=dict)
    words: int = 0

    @property
    def count_ok(self) -> bool:
        """The chapter count is the truth's."""
        return self.chapters == self.expected

    @property
    def exact(self) -> bool:
        """Every check holds."""
        return (
            self.count_ok
            and self.first_title
            and self.last_title
            and self.first_words
            and self.last_words
            and not self.residue
        )


def chapter_texts(book: CleanBook) -> list[ChapterText]:
    """The chapters of a structured book as :class:`ChapterText` (containers, heading and title; the text)."""
    return [
        ChapterText(headings=[*c.containers, c.source_heading, c.title or ""], text="\n\n".join(c.paragraphs))
        for c in book.chapters
    ]


def words(text: str) -> str:
    """Lower-case words only, one space apart: what a truth string and a splitter's text must share."""
    text = text.replace("\u2060", "").replace("_", "").replace("*", "")
    return " ".join(re.findall(r"\w+", text.lower()))


def truth_segments(title: str) -> list[str]:
    """The parts of a truth title that name headings; a parenthesised remark ('(followed by FINALE.)') is not
    one, and a title that is only a remark ('(headings absent in this copy)') names none."""
    if title.startswith("("):
        return []
    return [w for seg in title.split(" / ") if (w := words(re.sub(r"\([^)]*\)", " ", seg)))]


def residue(texts: list[str]) -> dict[str, int]:
    """Counts of each kind of :data:`RESIDUE` in ``texts``."""
    found: dict[str, int] = {}
    for text in texts:
        for what, pattern in RESIDUE.items():
            n = len(re.findall(pattern, text))
            if n:
                found[what] = found.get(what, 0) + n
    return found


def score(chapters: list[ChapterText], truth: TruthEntry) -> StructureScore:
    """Score ``chapters`` against ``truth``: the count, the first and last headings (every heading part of
    the truth title found among the chapter's heading lines), the narrative opening with the first words
    (within its first 2000 characters: a joined prelude's heading may come first) and ending with the last
    words (nothing after them but :data:`END_SLACK_CHARS` of a closing stage direction), and no residue."""
    narrative = words(" ".join(c.text for c in chapters))
    first, last = words(truth.first_words), words(truth.last_words)
    if "dropcap-image-missing-first-letter" in truth.shape and " " in first:
        head, rest = first.split(" ", 1)
        first = f"{head[1:]} {rest}"  # the first letter is an image the book lacks
    tail = last[-80:]

    def title_ok(ch: ChapterText | None, title: str) -> bool:
        got = words(" ".join(ch.headings)) if ch is not None else ""
        return all(seg in got for seg in truth_segments(title))

    return StructureScore(
        chapters=len(chapters),
        expected=truth.chapters,
        first_title=title_ok(chapters[0] if chapters else None, truth.first_title),
        last_title=title_ok(chapters[-1] if chapters else None, truth.last_title),
        first_words=bool(first) and first[:80] in narrative[:2000],
        last_words=bool(tail) and tail in narrative[-(len(tail) + END_SLACK_CHARS) :],
        residue=residue([c.text for c in chapters]),
        words=len(narrative.split()),
    )

"""The format-neutral document that every reader (EPUB, plain text, Markdown) produces for the structure stage.

A book is a sequence of :class:`Para` — a paragraph, a heading, a scene break — with the signals the source
carried: heading level and semantic types (EPUB ``h1``-``h6``, ``epub:type``, classes), the entries of the
book's own navigation pointing at it (EPUB nav / NCX), and in plain text the layout (blank lines before,
indentation, centring, line count). The structure stage decides chapters from these signals alone.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from ...strict import Record

ParaKind = Literal["p", "heading", "break", "verse", "quote", "figure", "note"]


#: a scene break however a book sets it: a rule, a row of asterisks or dots (on one line or several), a dinkus
SCENE_BREAK = re.compile(r"^[\s*·•⁂∗~_=—–-]*$")


def is_scene_break(text: str) -> bool:
    """``text`` is only break symbols, at least three of them ('* * *', a rule, rows of asterisks, '⁂')."""
    t = text.strip()
    return bool(t) and SCENE_BREAK.match(t) is not None and (sum(not c.isspace() for c in t) >= 3 or "⁂" in t)


class TocEntry(Record):
    """One entry of the book's navigation (EPUB nav / NCX), resolved to the paragraph it points at."""

    label: str
    depth: int = Field(..., ge=0, description="0 for top-level entries")
    para: int | None = Field(None, description="index of the paragraph the entry points at (None: not found)")
    target: str = Field("", description="the entry's href as the book gives it")


class Para(Record):
    """One block of the book with the structural signals its source gives."""

    text: str = Field(..., description="inline Markdown (*italics*, **bold**); verse keeps its line breaks")
    kind: ParaKind = "p"
    level: int | None = Field(None, ge=1, le=6, description="heading level (EPUB h1-h6, Markdown #)")
    types: list[str] = Field(default_factory=list, description="epub:type / role / class tokens of it and its section")
    ids: list[str] = Field(default_factory=list, description="anchors at this block (EPUB)")
    file: int = Field(0, ge=0, description="spine document index (EPUB), else 0")
    toc: list[int] = Field(default_factory=list, description="indices of the toc entries pointing here")
    before: int = Field(0, ge=0, description="blank lines before it (plain text)")
    indent: int = Field(0, ge=0, description="leading spaces of its least indented line (plain text)")
    centered: bool = Field(False, description="a short line set well in from the margin (plain text)")
    lines: int = Field(1, ge=1, description="source lines")
    line: int = Field(0, ge=0, description="1-based source line (plain text) where it starts")

    @property
    def words(self) -> int:
        return len(self.text.split())


class Document(Record):
    """A whole source book as paragraphs, its navigation and what the source says about itself."""

    format: Literal["epub", "gutenberg-text", "markdown"]
    paras: list[Para]
    toc: list[TocEntry] = Field(default_factory=list)
    encoding: str | None = Field(None, description="how the text was decoded (plain text), and why")
    wrap_width: int | None = Field(None, description="typical line width of wrapped plain text (None: unwrapped)")

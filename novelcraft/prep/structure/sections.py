"""Records of stage 2: the book's chapters (with their containers), reference sections, and the report of
every decision the structure stage took."""

from __future__ import annotations

from pydantic import Field

from ...strict import Record


class Section(Record):
    """A chapter or reference section as found in the book, before token budgeting."""

    heading: str = Field(..., description="normalized heading line (chapters) or title (reference)")
    source_heading: str
    paragraphs: list[str]
    title: str | None = None
    part: str | None = Field(None, description="the containers around a chapter, outermost first, joined by ' / '")
    kind: str = Field("chapter", description="'chapter' or a reference kind")
    containers: list[str] = Field(default_factory=list, description="container headings, outermost first")

    @property
    def text(self) -> str:
        if self.kind == "chapter":
            return "\n\n".join([self.heading, *self.paragraphs])
        return "\n\n".join(self.paragraphs)


class ReportItem(Record):
    """One line of the structure report: a chapter, a container, a reference section or dropped text."""

    role: str = Field(..., description="chapter | container | reference | dropped | warning | note")
    kind: str = Field("", description="reference kind, or what was dropped")
    title: str = ""
    words: int = 0
    where: str = Field("", description="source position (line or spine file) and first words")
    reason: str = ""


class CleanBook(Record):
    """Stage 2 output (``02_clean.json``): chapters and reference sections of one book, in order."""

    chapters: list[Section] = Field(default_factory=list)
    reference: list[Section] = Field(default_factory=list)
    footnotes: list[tuple[str, str, str]] = Field(default_factory=list, description="(where, marker, text)")
    display_title: str | None = None
    report: list[ReportItem] = Field(default_factory=list, description="what was found, kept and dropped, and why")
    residue: dict[str, int] = Field(default_factory=dict, description="markers removed from the narrative, by kind")
    encoding: str | None = None

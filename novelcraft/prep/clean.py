"""Stage 2 - clean: the ingested paragraphs -> chapters (with containers), reference sections, a report.

The method lives in :mod:`novelcraft.prep.structure`; this module applies a recipe's ``clean`` settings to
it, including the escape hatch for an odd book (``clean.books``: a heading pattern, paragraphs to drop,
the chapter count to expect), and renders the stage files a person reads.
"""

from __future__ import annotations

import re

from ..errors import StructureError
from .structure.build import structure_document
from .structure.document import Document
from .structure.sections import CleanBook, Section
from .structure.text_reader import read_text
from .structure.units import Options

__all__ = ["CleanBook", "Section", "clean_document", "clean_markdown", "render_clean_markdown", "render_report"]


def clean_document(
    doc: Document, *, title: str | None = None, author: str | None = None, config: object = None, source: str = ""
) -> CleanBook:
    """Structure ``doc`` with the recipe's ``clean`` settings (a :class:`~novelcraft.prep.recipe.CleanConfig`)."""
    from .recipe import BookOverride, CleanConfig

    cfg = config if isinstance(config, CleanConfig) else CleanConfig()
    override = cfg.override_for(source) if source else None
    if override is not None and override.drop:
        drops = [re.compile(p) for p in override.drop]
        doc = doc.model_copy(update={"paras": [p for p in doc.paras if not any(d.search(p.text) for d in drops)]})
    opts = Options(
        min_chapter_words=cfg.min_chapter_words,
        extra_reference_titles=tuple(cfg.extra_reference_titles),
        keep_footnotes=cfg.keep_footnotes,
        heading_pattern=override.heading_pattern if override else None,
    )
    book = structure_document(doc, title=title, author=author, options=opts)
    _footnotes_section(book, cfg.keep_footnotes)
    _cross_checks(book, override if isinstance(override, BookOverride) else None, source)
    return book


def clean_markdown(
    markdown: str, *, title: str | None = None, author: str | None = None, config: object = None
) -> CleanBook:
    """The whole of stage 2 on a Markdown (or plain-text) string: convenient for tests and notebooks."""
    return clean_document(read_text(markdown, markdown=True), title=title, author=author, config=config)


def _footnotes_section(book: CleanBook, keep: bool) -> None:
    if not keep or not book.footnotes:
        return
    lines: list[str] = []
    where = None
    for at, marker, text in book.footnotes:
        if at and at != where:
            lines.append(f"**{at}**")  # the notes of each chapter under its heading
        where = at
        lines.append(f"[{marker}] {text}" if marker else text)
    book.reference.append(
        Section(heading="Footnotes", source_heading="Footnotes", paragraphs=lines, title="Footnotes", kind="footnotes")
    )


def _cross_checks(book: CleanBook, override: object, source: str) -> None:
    """Warnings where the structure disagrees with itself; an error where it disagrees with the recipe."""
    expect = getattr(override, "chapters", None)
    if expect is not None and expect != len(book.chapters):
        raise StructureError(
            f"found {len(book.chapters)} chapters, the recipe expects {expect} "
            "(clean.books: set heading_pattern, or fix the count)",
            path=source,
            step="structure",
        )
    if not book.chapters:
        raise StructureError(
            "no detectable chapters: no heading reads like a chapter and no text is left", path=source, step="structure"
        )


def render_report(book: CleanBook, source: str = "") -> str:
    """The structure report (``02_structure.md``, ``novelcraft inspect``): the outline and every decision."""
    lines = [f"# Structure of {source or 'the book'}", ""]
    words = sum(len(t.split()) for ch in book.chapters for t in ch.paragraphs)
    lines.append(
        f"{len(book.chapters)} chapters, {words} words of narrative; {len(book.reference)} reference sections"
        + (f"; encoding {book.encoding}" if book.encoding else "")
    )
    warnings = [r for r in book.report if r.role == "warning"]
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {r.reason}" for r in warnings]
    lines += ["", "## Outline", ""]
    path: list[str] = []
    for i, ch in enumerate(book.chapters, start=1):
        for depth, name in enumerate(ch.containers):
            if depth >= len(path) or path[depth] != name:
                path = path[:depth] + [name]
                lines.append(f"{'  ' * depth}- **{name}**")
        n = sum(len(t.split()) for t in ch.paragraphs)
        lines.append(f"{'  ' * len(ch.containers)}- {i}. {ch.title or ch.source_heading or '(untitled)'} — {n} words")
    lines += [
        "",
        "## Reference and dropped material",
        "",
        "| role | kind | title | words | where | reason |",
        "| --- | --- | --- | ---: | --- | --- |",
    ]
    for r in book.report:
        if r.role in ("reference", "dropped"):
            lines.append(
                f"| {r.role} | {r.kind} | {_cell(r.title)} | {r.words} | {_cell(r.where)} | {_cell(r.reason)} |"
            )
    if book.residue:
        lines += ["", "## Residue removed from the narrative", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(book.residue.items())]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_clean_markdown(clean: CleanBook) -> str:
    """Human-readable stage-2 file: reference sections (flagged) then chapters."""
    parts = []
    for ref in clean.reference:
        parts.append(
            f"<!-- reference: {ref.kind} -->\n\n# {ref.title or ref.heading}\n\n" + "\n\n".join(ref.paragraphs)
        )
    parts.extend(ch.text for ch in clean.chapters)
    return "\n\n".join(parts) + "\n"

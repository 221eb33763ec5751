"""``novelcraft inspect``: the structure a book would get, before any GPU time is spent on it.

Runs stages 1 and 2 (ingest, clean) of one or more books in memory and renders the structure report: the
outline (containers, chapters with titles and word counts), every reference or dropped block with its kind
and the reason, the residue removed, and the warnings of the cross-checks. ``novelcraft prep`` writes the
same report next to each Book JSON (``02_structure.md``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .book import clean_raw_book
from .clean import CleanBook, render_report
from .ingest import RawBook, ingest_book
from .recipe import PrepRecipe


@dataclasses.dataclass
class Inspection:
    """One book's ingest and structure, and its report as Markdown."""

    source: Path
    raw: RawBook
    clean: CleanBook
    report: str

    @property
    def warnings(self) -> list[str]:
        """What the cross-checks found to disagree (empty when the structure agrees with itself)."""
        return [r.reason for r in self.clean.report if r.role == "warning"]


def inspect_book(path: str | Path, recipe: PrepRecipe | None = None) -> Inspection:
    """Ingest and structure ``path`` with the recipe's ``clean`` settings (defaults without a recipe).

    Raises :class:`~novelcraft.errors.NovelcraftError` (naming the file) when the book cannot be read or has no
    detectable chapters."""
    path = Path(path)
    recipe = recipe or PrepRecipe(name="inspect", books=[str(path)])
    override = recipe.clean.override_for(str(path))
    raw = ingest_book(path, encoding=override.encoding if override else None)
    clean = clean_raw_book(raw, recipe)
    return Inspection(source=path, raw=raw, clean=clean, report=render_report(clean, path.name))

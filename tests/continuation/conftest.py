"""Fixtures of the continuation tests: real Book JSON of the sample books (stages 1-3, no LLM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.models import Book

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def book_of(counter, tmp_path_factory):
    """``book_of(name)``: the Book JSON of ``data/books/NAME.epub`` (built once, cached) and its file."""
    from novelcraft.io import atomic_write_json
    from novelcraft.prep.book import prep_book
    from novelcraft.prep.recipe import PrepRecipe

    cache: dict[str, tuple[Book, Path]] = {}
    folder = tmp_path_factory.mktemp("books")

    def _book(name: str) -> tuple[Book, Path]:
        if name not in cache:
            epub = ROOT / "data" / "books" / f"{name}.epub"
            book = prep_book(epub, PrepRecipe.model_validate({"name": "t", "books": [str(epub)]}), counter)
            path = atomic_write_json(folder / name / "book.json", book)
            cache[name] = (book, path)
        return cache[name]

    return _book

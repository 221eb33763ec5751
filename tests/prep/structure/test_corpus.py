"""Every book of the structure corpus (``tests/data/corpus``: 25 real books of hard shapes) against its truth:
chapter count, first and last chapter headings and containers, first and last narrative words, and no
residue (illustration markers, image names, page numbers, Gutenberg text, control characters) in the
narrative (:mod:`novelcraft.prep.structure.truth`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novelcraft.prep.ingest import ingest_book
from novelcraft.prep.structure.build import structure_document
from novelcraft.prep.structure.sections import CleanBook
from novelcraft.prep.structure.truth import ChapterText, TruthEntry, chapter_texts, score

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
TRUTH = [TruthEntry.model_validate(t) for t in json.loads((CORPUS / "truth.json").read_text(encoding="utf-8"))]
IDS = [Path(t.file).stem for t in TRUTH]

_BOOKS: dict[str, CleanBook] = {}


def structured(entry: TruthEntry) -> CleanBook:
    if entry.file not in _BOOKS:
        raw = ingest_book(CORPUS / entry.file)
        _BOOKS[entry.file] = structure_document(raw.document, title=raw.meta.title, author=raw.meta.author)
    return _BOOKS[entry.file]


@pytest.mark.parametrize("entry", TRUTH, ids=IDS)
def test_book_matches_its_truth(entry: TruthEntry) -> None:
    got = score(chapter_texts(structured(entry)), entry)
    assert got.count_ok, (got.chapters, got.expected)
    assert got.first_title and got.last_title, got
    assert got.first_words and got.last_words, got
    assert not got.residue, got.residue
    assert got.exact


def test_the_score_fails_what_it_should() -> None:
    """The checks are not vacuous: a chapter missing, a licence left in, the first words cut all fail."""
    entry = next(t for t in TRUTH if t.file.endswith("great-gatsby.txt"))
    chapters = chapter_texts(structured(entry))
    assert score(chapters, entry).exact
    assert not score(chapters[1:], entry).exact
    licence = ChapterText(headings=["IX"], text=chapters[-1].text + "\n\nEnd of the Project Gutenberg EBook")
    assert score(chapters[:-1] + [licence], entry).residue == {"Gutenberg text": 1}
    cut = ChapterText(headings=chapters[0].headings, text=chapters[0].text[400:])
    assert not score([cut, *chapters[1:]], entry).first_words


def test_gutenberg_header_and_licence_are_reference_sections() -> None:
    for entry in TRUTH:
        kinds = {r.kind for r in structured(entry).reference}
        if any("gutenberg-header" in f for f in entry.front_matter):
            assert "gutenberg" in kinds, entry.file
        if any("license" in b or "licence" in b for b in entry.back_matter):
            assert "license" in kinds or "gutenberg" in kinds, entry.file

"""Every book of the structure corpus (``tests/data/corpus``: 25 real books of hard shapes) against its truth:
chapter count, first and last chapter headings and containers, first and last narrative words, and no
residue (illustration markers, image names, page numbers, Gutenberg text, control characters) in the
narrative."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from novelcraft.prep.ingest import ingest_book
from novelcraft.prep.structure.build import structure_document
from novelcraft.prep.structure.sections import CleanBook, Section

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
TRUTH = json.loads((CORPUS / "truth.json").read_text(encoding="utf-8"))

#: what must never reach the narrative
RESIDUE = {
    "illustration marker": r"\[(?:Illustration|Image|Figure)\b",
    "image file name": r"\b[\w-]+\.(?:jpe?g|png|gif|svg)\b",
    "image placeholder": r"^\d{4}m$",
    "page number": r"\[(?:Pg|Page|p\.)\s*\d+\]|\{\d+\}",
    "Gutenberg text": r"Project Gutenberg|gutenberg\.org|\*\*\* ?(?:START|END) OF",
    "control character": r"[\x80-\x9f]",
    "glued note number": r"[a-z]{3}[.,;:!?]\d{1,3}(?:\s|$)",
}


def words(text: str) -> str:
    """Lower-case words only: what a truth string and our text must share."""
    text = text.replace("\u2060", "").replace("_", "").replace("*", "")
    return " ".join(re.findall(r"\w+", text.lower()))


def outline_line(ch: Section) -> str:
    return words(" ".join([*ch.containers, ch.source_heading, ch.title or ""]))


def truth_segments(title: str) -> list[str]:
    """The parts of a truth title ('PART ONE—The Old Buccaneer / 1 / The Old Sea-dog') that name headings;
    a parenthesised remark ('(followed by FINALE.)') is not one."""
    if title.startswith("("):
        return []
    return [w for seg in title.split(" / ") if (w := words(re.sub(r"\([^)]*\)", " ", seg)))]


_BOOKS: dict[str, CleanBook] = {}


def structured(entry: dict) -> CleanBook:
    if entry["file"] not in _BOOKS:
        raw = ingest_book(CORPUS / entry["file"])
        _BOOKS[entry["file"]] = structure_document(raw.document, title=raw.meta.title, author=raw.meta.author)
    return _BOOKS[entry["file"]]


@pytest.mark.parametrize("entry", TRUTH, ids=[Path(t["file"]).stem for t in TRUTH])
def test_book_matches_its_truth(entry: dict) -> None:
    book = structured(entry)
    assert len(book.chapters) == entry["chapters"]
    narrative = words(" ".join(" ".join(c.paragraphs) for c in book.chapters))
    first, last = words(entry["first_words"]), words(entry["last_words"])
    if "dropcap-image-missing-first-letter" in entry["shape"]:
        first = first.split(" ", 1)[0][1:] + " " + first.split(" ", 1)[1]  # the letter is an image the EPUB lacks
    # the narrative opens with the first words (after the headings of a joined prelude or a chapter's argument)
    assert first[:80] in narrative[:2000], narrative[:200]
    # and ends with the last: nothing after them but a play's closing stage direction ('Exeunt', 'TABLEAU')
    tail = last[-80:]
    assert tail in narrative[-(len(tail) + 20) :], narrative[-200:]
    for chapter, key in ((book.chapters[0], "first_title"), (book.chapters[-1], "last_title")):
        got = outline_line(chapter)
        for seg in truth_segments(entry[key]):
            assert seg in got, f"{key}: {seg!r} not in {got!r}"


@pytest.mark.parametrize("entry", TRUTH, ids=[Path(t["file"]).stem for t in TRUTH])
def test_no_residue_in_the_narrative(entry: dict) -> None:
    book = structured(entry)
    found = []
    for ch in book.chapters:
        for para in ch.paragraphs:
            for what, pattern in RESIDUE.items():
                if m := re.search(pattern, para, re.M):
                    found.append(f"{what}: ...{para[max(0, m.start() - 30) : m.end() + 20]}...")
    assert not found, found[:5]


def test_front_and_back_matter_never_trained_are_classified() -> None:
    """The Gutenberg header and licence of every book that has them are reference sections of their kinds."""
    for entry in TRUTH:
        book = structured(entry)
        kinds = {r.kind for r in book.reference}
        if any("gutenberg-header" in f or "gutenberg header" in f.lower() for f in entry["front_matter"]):
            assert "gutenberg" in kinds or any("Gutenberg" in r.title for r in book.reference), entry["file"]
        if any("license" in b or "licence" in b for b in entry["back_matter"]):
            assert "license" in kinds or "gutenberg" in kinds, entry["file"]

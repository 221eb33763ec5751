"""Heading lines as books write them, in English, German and French, and their display as titles."""

from __future__ import annotations

import pytest

from novelcraft.prep.structure.headings import parse_heading, smart_title


@pytest.mark.parametrize(
    ("line", "label", "number", "title"),
    [
        ("CHAPTER I. MY EAGLE", "chapter", 1, "MY EAGLE"),
        ("Chapter 12", "chapter", 12, None),
        ("CHAPTER THE LAST", "chapter", -1, None),
        ("FIRST ACT", "act", 1, None),
        ("STAVE III: THE SECOND OF THE THREE SPIRITS", "stave", 3, "THE SECOND OF THE THREE SPIRITS"),
        ("[ 4 ]", None, 4, None),
        ("— II —", None, 2, None),
        ("BOOK THE SECOND—THE GOLDEN THREAD", "book", 2, "THE GOLDEN THREAD"),
        ("XIV. The Storm", None, 14, "The Storm"),
        ("LETTER 4", "letter", 4, None),
        ("ERSTES KAPITEL", "chapter", 1, None),
        ("Zweiter Teil", "part", 2, None),
        ("CHAPITRE PREMIER", "chapter", 1, None),
        ("Livre premier", "book", 1, None),
        ("ACTE II", "act", 2, None),
    ],
)
def test_heading_forms(line: str, label: str | None, number: int, title: str | None) -> None:
    h = parse_heading(line)
    assert h is not None and (h.label, h.number, h.title) == (label, number, title)


def test_narrative_words_and_plain_titles() -> None:
    epilogue = parse_heading("EPILOGUE")
    assert epilogue is not None and epilogue.narrative == "epilogue" and epilogue.number is None
    assert parse_heading("The Garden Party") is None


def test_smart_title() -> None:
    assert smart_title("JACKSON’S ARM") == "Jackson’s Arm"
    assert smart_title("THE MATHEMATICS OF A DREAM") == "The Mathematics of a Dream"
    assert smart_title("Down the Rabbit-Hole") == "Down the Rabbit-Hole"  # mixed case is left alone
    assert smart_title("PART IV. A VOYAGE TO THE COUNTRY OF THE HOUYHNHNMS") == (
        "Part IV. A Voyage to the Country of the Houyhnhnms"
    )
    assert smart_title("BOOK FIRST—A JUST MAN") == "Book First—A Just Man"
    assert smart_title("A TALE OF THE MILL") == "A Tale of the Mill"  # 'mill' is not a numeral

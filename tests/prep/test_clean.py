"""Stage 2 through its public API (``clean_markdown``, ``clean_document``, the recipe's ``clean`` settings and
the structure report) on inline text in the shapes real books use."""

import pytest

from novelcraft.errors import StructureError
from novelcraft.prep.clean import clean_document, clean_markdown, render_clean_markdown, render_report
from novelcraft.prep.recipe import CleanConfig
from novelcraft.prep.structure.text_reader import read_text

BODY = "It was a dark and stormy night, and the wind howled through the trees of the old forest. " * 4

GUTENBERG = f"""The Project Gutenberg eBook of Test

Title: Test Book

Author: Ann Author

*** START OF THE PROJECT GUTENBERG EBOOK TEST BOOK ***




TEST BOOK

by Ann Author



CONTENTS

 CHAPTER I. THE BEGINNING
 CHAPTER II. THE END




CHAPTER I. THE BEGINNING

{BODY}

[Illustration: The forest at night]

{BODY}




CHAPTER II. THE END

{BODY}



THE END



*** END OF THE PROJECT GUTENBERG EBOOK TEST BOOK ***

Project Gutenberg license text that nobody should train on.
"""


def test_gutenberg_book_chapters_and_nothing_else():
    book = clean_markdown(GUTENBERG, title="Test Book", author="Ann Author")
    assert [c.title for c in book.chapters] == ["The Beginning", "The End"]
    text = "\n".join(c.text for c in book.chapters)
    for bad in ("Gutenberg", "license", "Illustration", "CONTENTS", "THE END", "Ann Author"):
        assert bad not in text, bad
    kinds = [r.kind for r in book.reference]
    assert {"gutenberg", "license", "contents", "end_marker"} <= set(kinds)
    assert book.residue == {"illustration markers": 1}


def test_books_parts_and_an_epilogue_record_their_containers():
    md = "\n\n".join(
        [
            "# BOOK I",
            "## CHAPTER 1",
            BODY,
            "## CHAPTER 2",
            BODY,
            "# BOOK II. THE RETURN",
            "## CHAPTER 1",
            BODY,
            "# EPILOGUE",
            BODY,
        ]
    )
    book = clean_markdown(md)
    assert len(book.chapters) == 4
    assert [c.containers for c in book.chapters] == [["Book I"], ["Book I"], ["Book II. The Return"], []]
    assert book.chapters[3].title == "Epilogue"


def test_unnumbered_titled_sections_are_chapters_and_the_preface_is_reference():
    md = "\n\n".join(
        [
            "# PREFACE",
            "A word to the reader about this book, which is short.",
            "# The Garden",
            BODY,
            "# The Storm",
            BODY,
        ]
    )
    book = clean_markdown(md)
    assert [c.title for c in book.chapters] == ["The Garden", "The Storm"]
    assert [r.kind for r in book.reference] == ["preface"]


def test_no_chapters_is_an_error_naming_the_book():
    with pytest.raises(StructureError, match=r"tiny.txt: structure: no detectable chapters"):
        clean_document(read_text("Just a note."), source="tiny.txt")


def test_recipe_heading_pattern_and_chapter_count_for_an_odd_book():
    text = "\n\n".join(["~ one ~", BODY, "~ two ~", BODY, "~ three ~", BODY])
    config = CleanConfig.model_validate({"books": {"odd.txt": {"heading_pattern": r"^~ \w+ ~$", "chapters": 3}}})
    book = clean_document(read_text(text), config=config, source="odd.txt")
    assert len(book.chapters) == 3
    wrong = CleanConfig.model_validate({"books": {"odd*": {"heading_pattern": r"^~ \w+ ~$", "chapters": 4}}})
    with pytest.raises(StructureError, match=r"odd.txt: structure: found 3 chapters, the recipe expects 4"):
        clean_document(read_text(text), config=wrong, source="odd.txt")
    # the settings name one book: another is structured without them
    assert clean_document(read_text(text), config=config, source="other.txt").chapters


def test_recipe_drop_patterns_remove_paragraphs_before_cleaning():
    text = "\n\n".join(["CHAPTER I.", BODY, "SPONSORED BY ACME PRESS", BODY, "CHAPTER II.", BODY])
    config = CleanConfig.model_validate({"books": {"b.txt": {"drop": ["^SPONSORED BY"]}}})
    book = clean_document(read_text(text), config=config, source="b.txt")
    assert "SPONSORED" not in "\n".join(c.text for c in book.chapters)


def test_bad_recipe_patterns_are_rejected():
    with pytest.raises(ValueError, match="is not a regular expression"):
        CleanConfig.model_validate({"books": {"b.txt": {"heading_pattern": "(unclosed"}}})


def test_report_shows_outline_reference_residue_and_warnings():
    heads = ["CHAPTER I.", "CHAPTER II.", "CHAPTER III.", "CHAPTER V.", "CHAPTER VI."]
    text = "\n\n\n\n".join(x for h in heads for x in (h, BODY)) + "\n\n[Illustration]"
    book = clean_document(read_text(text), source="skip.txt")
    report = render_report(book, "skip.txt")
    assert "# Structure of skip.txt" in report and "5 chapters" in report
    assert "## Warnings" in report and "chapter numbers skip: 'CHAPTER V.' follows 'CHAPTER III.'" in report
    assert "illustration markers: 1" in report
    assert render_clean_markdown(book).count("# Chapter ") == 5  # normalized headings, numbered in order

"""Unit tests of the pure cleaning functions on inline text in the shapes real books use."""

from novelcraft.prep.clean import (
    classify_heading,
    clean_inline,
    clean_markdown,
    extract_footnotes,
    reference_kind,
    smart_title,
    strip_gutenberg,
)

BODY = "It was a dark and stormy night, and the wind howled through the trees of the old forest. " * 4

GUTENBERG = f"""The Project Gutenberg eBook of Test

**Title**: Test Book

\\*\\*\\* START OF THE PROJECT GUTENBERG EBOOK TEST BOOK \\*\\*\\*

# Test Book

## by Ann Author

![](cover.jpg)

## Contents

| [CHAPTER I.](#ch1) | Beginning |
|----|----|
| [CHAPTER II.](#ch2) | End |

## CHAPTER I. THE BEGINNING

{BODY}[^(\\[1\\])](#fn-1)

[\\[1\\]](#fnref-1) A note about the night.

## CHAPTER II. THE END

{BODY}

##### THE END

\\*\\*\\* END OF THE PROJECT GUTENBERG EBOOK TEST BOOK \\*\\*\\*

## THE FULL PROJECT GUTENBERG LICENSE

Project Gutenberg license text.
"""


def test_gutenberg_header_license_toc_images_footnotes_removed():
    book = clean_markdown(GUTENBERG, title="Test Book", author="Ann Author")
    assert [c.heading for c in book.chapters] == ["# Chapter 1: The Beginning", "# Chapter 2: The End"]
    text = "\n".join(c.text for c in book.chapters)
    for bad in ("Gutenberg", "license", "cover.jpg", "](#", "[1]", "<", "Contents", "THE END"):
        assert bad not in text, bad
    notes = [r for r in book.reference if r.kind == "footnotes"]
    assert notes and notes[0].paragraphs == ["**CHAPTER I. THE BEGINNING**", "[1] A note about the night."]


def test_strip_gutenberg_plain_text_markers():
    txt = "Header\n\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nProduced by Someone\n\nBody.\n\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n\nLicense"
    assert strip_gutenberg(txt) == "Body."


def test_heading_forms_real_books_use():
    c = classify_heading("CHAPTER I. MY EAGLE")
    assert (c.kind, c.number, c.title) == ("chapter", "I", "MY EAGLE")
    assert classify_heading("Chapter 1").number == "1"
    assert classify_heading("Letter 4").label == "letter"
    assert classify_heading("CHAPTER THE FIRST").kind == "other" or classify_heading("CHAPTER FIRST").kind == "chapter"
    assert classify_heading("XIV. The Storm").title == "The Storm"
    assert classify_heading("BOOK II").kind == "container"
    assert classify_heading("FOREWORD").reference_kind == "foreword"
    assert classify_heading("THE END").kind == "end"
    assert classify_heading("The Garden Party").kind == "other"


def test_reference_kinds():
    assert reference_kind("PREFACE TO THE SECOND EDITION") == "preface"
    assert reference_kind("Dramatis Personae") == "characters"
    assert reference_kind("ETYMOLOGY.") == "etymology"
    assert reference_kind("EXTRACTS (Supplied by a Sub-Sub-Librarian).") == "extracts"
    assert reference_kind("Glossary of Terms") == "glossary"
    assert reference_kind("Introduction") == "introduction"
    assert reference_kind("The Lighthouse") is None


def test_books_parts_and_titled_sections():
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
            "## EPILOGUE",
            BODY,
        ]
    )
    book = clean_markdown(md)
    assert [c.heading for c in book.chapters] == ["# Chapter 1", "# Chapter 2", "# Chapter 3", "# Chapter 4: Epilogue"]
    assert [c.part for c in book.chapters] == ["Book I", "Book I", "Book II — The Return", "Book II — The Return"]


def test_unnumbered_titled_sections_become_chapters_and_preface_is_reference():
    md = "\n\n".join(["# PREFACE", "A word to the reader about this book.", "# The Garden", BODY, "# The Storm", BODY])
    book = clean_markdown(md)
    assert [c.heading for c in book.chapters] == ["# Chapter 1: The Garden", "# Chapter 2: The Storm"]
    assert [(r.kind, r.title) for r in book.reference] == [("preface", "Preface")]


def test_plain_paragraph_chapter_headings_are_promoted():
    md = "\n\n".join(["CHAPTER I.", "MY EAGLE", BODY, "**CHAPTER II.**", BODY])
    book = clean_markdown(md)
    assert [c.heading for c in book.chapters] == ["# Chapter 1: My Eagle", "# Chapter 2"]


def test_inline_cleanup_keeps_emphasis():
    assert clean_inline("<span id='x'>Some</span> *feel* and **bold** [link](#a){#id}") == "Some *feel* and **bold** link"
    assert clean_inline("verse one\\\nverse two") == "verse one\nverse two"
    assert clean_inline("no\u00a0break\u200b here \\[sic\\]") == "no break here [sic]"


def test_extract_footnotes_gfm_and_links():
    body, notes = extract_footnotes(["Text.", "[^a]: GFM note", "## CHAPTER II", "[\\[2\\]](#r2) Linked note"])
    assert body == ["Text.", "## CHAPTER II"] and notes == [(None, "a", "GFM note"), ("CHAPTER II", "2", "Linked note")]


def test_smart_title():
    assert smart_title("JACKSON’S ARM") == "Jackson’s Arm"
    assert smart_title("THE MATHEMATICS OF A DREAM") == "The Mathematics of a Dream"
    assert smart_title("Down the Rabbit-Hole") == "Down the Rabbit-Hole"


def test_no_chapters_gives_empty_structure():
    assert clean_markdown("Just a note.").chapters == []

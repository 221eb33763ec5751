"""One test per defect class that real books showed, on inline text: each builds the shape a book has and
asserts the structure a reader would give it."""

from __future__ import annotations

import pytest

from novelcraft.prep.recipe import PrepRecipe
from novelcraft.prep.structure.build import structure_document
from novelcraft.prep.structure.document import Document, Para, TocEntry
from novelcraft.prep.structure.sections import CleanBook
from novelcraft.prep.structure.text_reader import read_text

PROSE = (
    "The rain had not stopped for three days, and the river was rising under the old stone bridge where "
    "the miller's boy stood watching the brown water carry branches down towards the town. "
)
#: one paragraph as a Gutenberg file wraps it
PARAGRAPH = (
    "The rain had not stopped for three days, and the river was rising under\n"
    "the old stone bridge where the miller's boy stood watching the brown\n"
    "water carry branches down towards the town."
)


def prose(n: int = 3, seed: str = "") -> str:
    """``n`` wrapped paragraphs, one blank line apart."""
    return "\n\n".join(f"{seed}{PARAGRAPH}" for _ in range(n))


def book_of(*blocks: str, gap: str = "\n\n\n\n", title: str | None = None, author: str | None = None) -> CleanBook:
    """A plain-text book: blocks separated like chapters of a Gutenberg file (several blank lines)."""
    return structure_document(read_text(gap.join(blocks)), title=title, author=author)


def narrative(book: CleanBook) -> str:
    return "\n".join("\n".join(c.paragraphs) for c in book.chapters)


def test_a_title_page_is_not_chapter_one() -> None:
    book = book_of(
        "T H E   M I L L E R ' S   B O Y",
        "BY\n\nJANE HOLLOWAY",
        "LONDON\nSMITH, ELDER & CO., 15 WATERLOO PLACE\n1871",
        "CHAPTER I.",
        prose(),
        "CHAPTER II.",
        prose(),
        title="The Miller's Boy",
        author="Jane Holloway",
    )
    assert [c.source_heading for c in book.chapters] == ["CHAPTER I.", "CHAPTER II."]
    assert "WATERLOO" not in narrative(book)
    assert {"title_page"} <= {r.kind for r in book.reference}


def test_ads_colophon_illustrations_and_image_names_leave_the_narrative() -> None:
    book = book_of(
        "CHAPTER I.",
        prose() + "\n\n[Illustration: The bridge at night]\n\n" + prose(1),
        "CHAPTER II.",
        prose() + "\n\np042.jpg (88K)\n\nFull Size\n\n" + prose(1),
        "THE END",
        "BOOKS BY THE SAME AUTHOR",
        "THE MILL ON THE HILL. Crown 8vo, cloth, 3s. 6d.\n\nA WINTER TALE. Illustrated. Price 5s. net.",
        "PRINTED BY WILLIAM CLOWES AND SONS, LIMITED, LONDON AND BECCLES.",
    )
    text = narrative(book)
    for bad in ("Illustration", "p042.jpg", "Full Size", "3s. 6d.", "CLOWES", "THE END"):
        assert bad not in text, bad
    assert book.residue["illustration markers"] == 3
    kinds = {r.kind for r in book.reference}
    assert "advertisement" in kinds and "end_marker" in kinds


def test_an_authors_closing_note_before_the_end_is_narrative() -> None:
    """A NOTE after the last chapter that THE END closes is the novel's own ending (Dracula's), not notes."""
    book = book_of("CHAPTER I.", prose(), "CHAPTER II.", prose(), "NOTE", prose(2, "Seven years later. "), "THE END")
    assert len(book.chapters) == 2
    assert "Seven years later" in "\n".join(book.chapters[-1].paragraphs)
    assert "notes" not in {r.kind for r in book.reference}


def test_a_heading_with_a_subtitle_line_keeps_both() -> None:
    book = book_of("CHAPTER I.", "THE FLOOD", prose(), "CHAPTER II.", "THE BRIDGE", prose(), gap="\n\n")
    assert [c.title for c in book.chapters] == ["The Flood", "The Bridge"]
    assert "THE BRIDGE" not in book.chapters[0].paragraphs[-1]


def test_container_headings_in_prose_form_are_recorded_not_left_as_text() -> None:
    book = book_of(
        "BOOK THE FIRST—RECALLED TO LIFE",
        "CHAPTER I.",
        prose(),
        "CHAPTER II.",
        prose(),
        "BOOK THE SECOND—THE GOLDEN THREAD",
        "CHAPTER I.",
        prose(),
        "CHAPTER II.",
        prose(),
    )
    assert len(book.chapters) == 4
    assert [c.containers[0].split("—")[0] for c in book.chapters] == ["Book the First"] * 2 + ["Book the Second"] * 2
    assert "BOOK THE SECOND" not in narrative(book)


def test_a_bare_epilogue_contains_its_numbered_sections() -> None:
    book = book_of("PART I", "I", prose(), "II", prose(), "EPILOGUE", "I", prose(), "II", prose())
    assert len(book.chapters) == 4
    assert [c.containers for c in book.chapters][2:] == [["Epilogue"], ["Epilogue"]]


def test_a_chapter_x_heading_is_not_swallowed_into_chapter_ix() -> None:
    heads = [f"CHAPTER {r}." for r in ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI")]
    book = book_of(*[x for h in heads for x in (h, prose())])
    assert [c.source_heading for c in book.chapters] == heads


def test_a_salutation_is_not_a_chapter_title() -> None:
    book = book_of("LETTER I.", "My dear Sister,\n\n" + prose(), "LETTER II.", "Dearest Margaret,\n\n" + prose())
    assert [c.title for c in book.chapters] == [None, None] or all(
        "Sister" not in (c.title or "") and "Margaret" not in (c.title or "") for c in book.chapters
    )
    assert book.chapters[0].paragraphs[0] == "My dear Sister,"


def test_an_illustration_caption_naming_a_chapter_gives_no_title() -> None:
    book = book_of(
        "CHAPTER I.", "[Illustration: Chapter I. The bridge]\n\n" + prose(), "CHAPTER II.", prose(), gap="\n\n\n"
    )
    assert all(c.title in (None, "") or "]" not in c.title for c in book.chapters)
    assert "Illustration" not in narrative(book)


def test_contents_licence_and_publisher_pages_are_never_epigraphs_or_training_scenes() -> None:
    book = book_of(
        "CONTENTS",
        " CHAPTER I. THE FLOOD\n CHAPTER II. THE BRIDGE",
        "CHAPTER I. THE FLOOD",
        prose(),
        "CHAPTER II. THE BRIDGE",
        prose(),
    )
    kinds = [r.kind for r in book.reference]
    assert "contents" in kinds and "epigraph" not in kinds
    recipe = PrepRecipe.model_validate({"name": "t", "books": ["x"], "segmentation": {"include_reference": True}})
    assert "contents" not in recipe.segmentation.reference_kinds
    assert "license" not in recipe.segmentation.reference_kinds
    with pytest.raises(ValueError, match="never"):
        PrepRecipe.model_validate(
            {"name": "t", "books": ["x"], "segmentation": {"include_reference": True, "reference_kinds": ["license"]}}
        )


def test_gutenberg_header_or_footer_alone_is_removed() -> None:
    only_footer = book_of(
        "CHAPTER I.",
        prose(),
        "CHAPTER II.",
        prose(),
        "End of the Project Gutenberg EBook of The Mill, by Jane Holloway\n\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK THE MILL ***\n\nUpdated editions will replace...",
    )
    assert "Gutenberg" not in narrative(only_footer) and "Updated editions" not in narrative(only_footer)
    only_header = book_of(
        "The Project Gutenberg EBook of The Mill, by Jane Holloway\n\nThis eBook is for the use "
        "of anyone anywhere at no cost.\n\n*** START OF THIS PROJECT GUTENBERG EBOOK THE MILL ***",
        "CHAPTER I.",
        prose(),
        "CHAPTER II.",
        prose(),
    )
    assert "Gutenberg" not in narrative(only_header) and "anyone anywhere" not in narrative(only_header)
    old_style = book_of(
        "**The Project Gutenberg Etext of The Mill**\n\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN "
        "ETEXTS*Ver.04.29.93*END*",
        "CHAPTER I.",
        prose(),
        "CHAPTER II.",
        prose(),
    )
    assert "SMALL PRINT" not in narrative(old_style)


def test_glued_footnote_numbers_and_page_numbers_are_removed() -> None:
    glued = PARAGRAPH.replace("bridge where", "bridge.12 where").replace("town.", "town.7")
    book = book_of("CHAPTER I.", "\n\n".join([glued] * 3), "CHAPTER II.", "\n\n".join([glued] * 3) + " [Pg 12]")
    text = narrative(book)
    assert "bridge.12" not in text and "town.7" not in text and "[Pg 12]" not in text


def test_german_and_french_headings() -> None:
    de = book_of("ERSTES KAPITEL", prose(), "ZWEITES KAPITEL", prose(), "DRITTES KAPITEL", prose())
    assert len(de.chapters) == 3
    fr = book_of("CHAPITRE PREMIER", prose(), "CHAPITRE II", prose(), "CHAPITRE III", prose())
    assert len(fr.chapters) == 3
    parts = book_of("ERSTER TEIL", "I", prose(), "II", prose(), "ZWEITER TEIL", "I", prose())
    assert [c.containers for c in parts.chapters] == [["Erster Teil"]] * 2 + [["Zweiter Teil"]]


def test_a_play_has_scenes_as_units_and_its_persons_as_reference() -> None:
    book = book_of(
        "DRAMATIS PERSONÆ",
        "MILLER, an old man.\nTOM, his son.\nMARY, a neighbour.",
        "ACT I",
        "SCENE I. The mill.",
        "Enter MILLER and TOM.\n\n" + prose(2),
        "SCENE II. The bridge.",
        prose(2),
        "ACT II",
        "SCENE I. The town.",
        prose(2),
    )
    assert len(book.chapters) == 3
    assert [c.containers for c in book.chapters] == [["Act I"], ["Act I"], ["Act II"]]
    assert "characters" in {r.kind for r in book.reference}


def test_a_story_collection_has_one_chapter_per_story() -> None:
    book = book_of("THE SISTERS", prose(), "AN ENCOUNTER", prose(), "ARABY", prose(), "EVELINE", prose())
    assert [c.title for c in book.chapters] == ["The Sisters", "An Encounter", "Araby", "Eveline"]


def test_epub_navigation_and_semantics_decide() -> None:
    """Chapter headings that are plain paragraphs, found through the book's navigation; a colophon marked by
    epub:type stays out."""
    paras = [
        Para(text="I", kind="p", toc=[0], file=1),
        Para(text=PROSE * 3, file=1),
        Para(text="II", kind="p", toc=[1], file=2),
        Para(text=PROSE * 3, file=2),
        Para(text="Colophon", kind="heading", level=2, types=["colophon"], file=3),
        Para(text="This ebook was produced by volunteers.", types=["colophon"], file=3),
    ]
    doc = Document(
        format="epub", paras=paras, toc=[TocEntry(label="I", depth=0, para=0), TocEntry(label="II", depth=0, para=2)]
    )
    book = structure_document(doc)
    assert len(book.chapters) == 2
    assert [r.kind for r in book.reference] == ["colophon"]


def test_navigation_that_disagrees_is_a_warning() -> None:
    paras = [
        Para(text="Chapter 1", kind="heading", level=2, toc=[0]),
        Para(text=PROSE * 3),
        Para(text="Chapter 2", kind="heading", level=2, toc=[1]),
        Para(text=PROSE * 3),
        Para(text="The Storm", kind="p", toc=[2]),
        Para(text=PROSE * 3),
        Para(text="Chapter 3", kind="heading", level=2, toc=[3]),
        Para(text=PROSE * 3),
    ]
    toc = [TocEntry(label=p.text, depth=0, para=i) for i, p in enumerate(paras) if p.toc]
    book = structure_document(Document(format="epub", paras=paras, toc=toc))
    warnings = [r.reason for r in book.report if r.role == "warning"]
    assert any("navigation entries point at no chapter: 'The Storm'" in w for w in warnings), warnings

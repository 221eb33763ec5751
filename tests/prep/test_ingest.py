"""Stage 1 on real EPUBs and on bad input: one clear error naming the file and the cause."""

import zipfile

import pytest

from novelcraft.errors import IngestError
from novelcraft.prep.ingest import gutenberg_header_metadata, ingest_book, render_document


def test_epub_metadata_and_paragraphs(books_dir):
    raw = ingest_book(books_dir / "iron-heel.epub")
    assert raw.meta.author == "Jack London"
    assert raw.meta.language == "en"
    assert raw.meta.source_id == "gutenberg:1164"
    assert raw.meta.format == "epub" and len(raw.meta.source_sha256) == 64
    doc = raw.document
    heading = next(p for p in doc.paras if p.kind == "heading" and "MY EAGLE" in p.text)
    assert heading.text == "CHAPTER I. MY EAGLE" and heading.level is not None  # number and title on one line
    assert heading.toc, "the navigation entry of chapter I points at its heading"
    assert all("<" not in p.text for p in doc.paras)
    assert f"{'#' * heading.level} CHAPTER I. MY EAGLE" in render_document(doc)


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_corrupt_epub(tmp_path, books_dir):
    bad = tmp_path / "garbage.epub"
    bad.write_bytes(b"this is not a zip file at all")
    with pytest.raises(IngestError, match=r"garbage.epub: ingest: corrupt EPUB: not a valid zip"):
        ingest_book(bad)
    truncated = tmp_path / "truncated.epub"
    truncated.write_bytes((books_dir / "alice-in-wonderland.epub").read_bytes()[:50_000])
    with pytest.raises(IngestError, match="truncated.epub: ingest: corrupt EPUB"):
        ingest_book(truncated)
    nocontainer = _zip(tmp_path / "plain.epub", {"mimetype": "application/epub+zip"})
    with pytest.raises(IngestError, match="container.xml is missing"):
        ingest_book(nocontainer)


def test_drm_epub(tmp_path):
    enc = '<encryption><EncryptedData><CipherData><CipherReference URI="OEBPS/chapter1.xhtml"/></CipherData></EncryptedData></encryption>'
    drm = _zip(
        tmp_path / "drm.epub",
        {"mimetype": "application/epub+zip", "META-INF/container.xml": "<container/>", "META-INF/encryption.xml": enc},
    )
    with pytest.raises(IngestError, match=r"drm.epub: ingest: DRM-protected EPUB"):
        ingest_book(drm)
    rights = _zip(
        tmp_path / "adept.epub", {"mimetype": "x", "META-INF/container.xml": "<c/>", "META-INF/rights.xml": "<r/>"}
    )
    with pytest.raises(IngestError, match="DRM-protected"):
        ingest_book(rights)


def test_empty_missing_and_unsupported(tmp_path):
    empty = tmp_path / "empty.epub"
    empty.write_bytes(b"")
    with pytest.raises(IngestError, match="empty.epub: ingest: empty file"):
        ingest_book(empty)
    with pytest.raises(IngestError, match="file not found"):
        ingest_book(tmp_path / "nope.txt")
    doc = tmp_path / "book.docx"
    doc.write_bytes(b"x")
    with pytest.raises(IngestError, match="unsupported file type '.docx'"):
        ingest_book(doc)
    blank = tmp_path / "blank.md"
    blank.write_text("\n\n   \n")
    with pytest.raises(IngestError, match="no text"):
        ingest_book(blank)


def test_encodings_are_detected_and_recorded(tmp_path):
    text = "“Café,” she said — and left. " * 20
    for codec, expect in (("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252"), ("utf-16", "utf-16")):
        path = tmp_path / f"{codec}.txt"
        path.write_bytes(text.encode(codec))
        raw = ingest_book(path)
        assert raw.meta.encoding is not None and raw.meta.encoding.startswith(expect), (codec, raw.meta.encoding)
        assert "“Café,”" in raw.document.paras[0].text
        assert not any(0x80 <= ord(ch) <= 0x9F for p in raw.document.paras for ch in p.text)  # no C1 controls
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Café au lait, crème brûlée. ".encode("latin-1") * 10)
    raw = ingest_book(latin)
    assert raw.meta.encoding.startswith("latin-1") and "crème brûlée" in raw.document.paras[0].text
    forced = ingest_book(latin, encoding="cp1252")
    assert forced.meta.encoding == "cp1252 (given by the recipe)"
    with pytest.raises(IngestError, match=r"latin.txt: ingest: cannot decode as ascii"):
        ingest_book(latin, encoding="ascii")


def test_undecidable_and_binary_text_fail_clearly(tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_bytes(bytes(range(0x80, 0xA0)) * 5)  # cp1252-undefined bytes: no encoding reads it cleanly
    with pytest.raises(IngestError, match=r"odd.txt: ingest: cannot decide the text encoding"):
        ingest_book(odd)
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    with pytest.raises(IngestError, match=r"image.txt: ingest: not a text file"):
        ingest_book(binary)


def test_gutenberg_plain_text(tmp_path):
    txt = tmp_path / "book.txt"
    txt.write_text(
        "The Project Gutenberg eBook of Tiny\n\nTitle: Tiny Tale\n\nAuthor: Ann Author\n\n"
        "Release date: May 3, 2006 [eBook #99999]\n\nLanguage: English\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK TINY TALE ***\n\n"
        "CHAPTER I.\n\nTHE START\n\nIt was a _very_ long line that the\ntranscriber wrapped at seventy\ncharacters.\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK TINY TALE ***\n",
        encoding="utf-8",
    )
    raw = ingest_book(txt)
    assert (raw.meta.title, raw.meta.author, raw.meta.source_id) == ("Tiny Tale", "Ann Author", "gutenberg:99999")
    texts = [p.text for p in raw.document.paras]
    assert "It was a *very* long line that the transcriber wrapped at seventy characters." in texts


def test_header_metadata_markdown_bold():
    meta = gutenberg_header_metadata(
        "**Title**: The iron heel\n\n**Author**: Jack London\n\n**Release date**: May 3, 2006 \\[eBook \\#1164\\]"
    )
    assert meta["title"] == "The iron heel" and meta["source_id"] == "gutenberg:1164"


def _make_epub(path, chapters):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-id")
    book.set_title("Made Up")
    book.set_language("en")
    book.add_author("Ann Author")
    items = []
    for i, html in enumerate(chapters, 1):
        item = epub.EpubHtml(title=f"c{i}", file_name=f"c{i}.xhtml", lang="en")
        item.content = html
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


def test_empty_epub_fails_clearly(tmp_path, counter):
    from novelcraft.errors import NovelcraftError
    from novelcraft.prep.book import prep_book
    from novelcraft.prep.recipe import PrepRecipe

    path = _make_epub(tmp_path / "hollow.epub", ["<html><body><p></p></body></html>"])
    with pytest.raises(
        NovelcraftError, match=r"hollow.epub: (ingest: the book has no text|structure: no detectable chapters)"
    ):
        prep_book(path, PrepRecipe(name="t", books=["x"]), counter)


def test_unseen_epub_shapes(tmp_path, counter):
    """An EPUB never seen before: BOOK/CHAPTER nesting, a chapter heading set as a bold paragraph, a glossary."""
    from novelcraft.prep.book import prep_book
    from novelcraft.prep.recipe import PrepRecipe

    para = "<p>" + "The river ran cold under the bridge while the lamps of the town went out one by one. " * 6 + "</p>"
    path = _make_epub(
        tmp_path / "unseen.epub",
        [
            "<html><body><h1>BOOK I</h1><h2>CHAPTER 1<br/>THE BRIDGE</h2>" + para * 3 + "</body></html>",
            "<html><body><p><b>CHAPTER 2</b></p>" + para * 3 + "</body></html>",
            "<html><body><h1>BOOK II</h1><h2>CHAPTER 1</h2>" + para * 3 + "</body></html>",
            "<html><body><h2>GLOSSARY</h2><p>Bridge: a way across.</p></body></html>",
        ],
    )
    book = prep_book(path, PrepRecipe(name="t", books=["x"]), counter)
    assert [c.heading for c in book.chapters] == ["# Chapter 1: The Bridge", "# Chapter 2", "# Chapter 3"]
    assert [c.part for c in book.chapters] == ["Book I", "Book I", "Book II"]
    assert [r.kind for r in book.reference] == ["contents", "glossary"]  # the nav page in the spine is a contents
    assert book.meta.title == "Made Up" and book.meta.author == "Ann Author"

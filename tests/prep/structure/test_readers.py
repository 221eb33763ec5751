"""The two readers: plain text by its layout (wrapped or not, CRLF, centring, verse, ``_italics_``) and EPUB by
its markup (spine, navigation, ``epub:type``, heading levels)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from novelcraft.prep.structure.epub_reader import read_epub
from novelcraft.prep.structure.text_reader import read_text

WRAPPED = (
    "The rain had not stopped for three days, and the river was rising under\n"
    "the old stone bridge where the miller's boy stood watching the _brown_\n"
    "water carry branches down towards the town."
)


def test_wrapped_text_with_crlf_gives_paragraphs_and_layout() -> None:
    text = "\n".join(["", "", "", "                              CHAPTER I.", "", "", WRAPPED, "", WRAPPED])
    text = text.replace("\n", "\r\n")
    doc = read_text(text)
    heading, first, second = doc.paras
    assert heading.text == "CHAPTER I." and heading.centered and heading.before == 3 and heading.line == 4
    assert first.text.startswith("The rain") and "\n" not in first.text and first.lines == 3
    assert "*brown*" in first.text and "_" not in first.text
    assert second.before == 1


def test_unwrapped_text_keeps_one_paragraph_per_line() -> None:
    long_line = (WRAPPED.replace("\n", " ") + " ") * 2
    doc = read_text("\n".join([long_line.strip()] * 25))
    assert len(doc.paras) == 25 and doc.wrap_width is None


def test_indented_verse_keeps_its_lines() -> None:
    doc = read_text(
        WRAPPED + "\n\n    Then wear the gold hat, if that will move her;\n    If you can bounce high, bounce "
        "for her too,\n\n" + WRAPPED
    )
    verse = doc.paras[1]
    assert verse.kind == "verse" and verse.text.count("\n") == 1


def _epub(path: Path, files: dict[str, str]) -> Path:
    container = (
        '<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'version="1.0"><rootfiles><rootfile full-path="OEBPS/content.opf" '
        'media-type="application/oebps-package+xml"/></rootfiles></container>'
    )
    nav = ' properties="nav"'
    items = "".join(
        f'<item id="i{k}" href="{n}" media-type="application/xhtml+xml"{nav if n == "nav.xhtml" else ""}/>'
        for k, n in enumerate(files)
    )
    spine = "".join(f'<itemref idref="i{k}"/>' for k, n in enumerate(files) if n != "nav.xhtml")
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">x</dc:identifier>'
        "<dc:title>Made Up</dc:title><dc:language>en</dc:language></metadata>"
        f"<manifest>{items}</manifest><spine>{spine}</spine></package>"
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("META-INF/container.xml", container)
        zf.writestr("OEBPS/content.opf", opf)
        for name, body in files.items():
            zf.writestr(f"OEBPS/{name}", body)
    return path


def _xhtml(body: str) -> str:
    return (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<body>{body}</body></html>"
    )


def test_epub_spine_navigation_and_semantics(tmp_path: Path) -> None:
    nav = _xhtml(
        '<nav epub:type="toc"><ol><li><a href="c1.xhtml#h">One</a></li><li><a href="c2.xhtml">Two</a></li></ol></nav>'
    )
    path = _epub(
        tmp_path / "b.epub",
        {
            "nav.xhtml": nav,
            "c1.xhtml": _xhtml(
                '<section epub:type="chapter"><h2 id="h">I<br/>The Flood</h2><p>It rained.'
                '<a epub:type="noteref" href="#n1">1</a></p></section>'
            ),
            "c2.xhtml": _xhtml(
                '<section epub:type="chapter"><p class="chapter-title">II</p><p>It stopped.</p></section>'
            ),
            "colophon.xhtml": _xhtml('<section epub:type="colophon"><h2>Colophon</h2><p>Made by hand.</p></section>'),
        },
    )
    doc = read_epub(path)
    texts = [p.text for p in doc.paras]
    assert texts[:2] == ["I The Flood", "It rained."]  # the heading on one line, the note reference dropped
    heading = doc.paras[0]
    assert heading.kind == "heading" and heading.level == 2 and heading.lines == 2 and "chapter" in heading.types
    assert [(e.label, e.para) for e in doc.toc] == [("One", 0), ("Two", 2)]
    assert doc.paras[2].toc == [1] and "chapter-title" in doc.paras[2].types
    assert "colophon" in doc.paras[-1].types and doc.paras[-1].file == 2

"""EPUB 2 / EPUB 3 -> :class:`Document`: the spine's XHTML as paragraphs, with the book's own navigation.

The reader keeps what the producer marked: heading levels, ``epub:type`` / ``role`` / classes of every block
and of the sections around it (Standard Ebooks marks ``chapter``, ``part``, ``dedication``, ``colophon``...;
Gutenberg marks ``pgheader``...), anchors, and which entries of the navigation document (EPUB 3 nav) or NCX
(EPUB 2) point at each block. Inline markup becomes Markdown (*italics*, **bold**); images become figure
blocks (their alt text kept for the structure report, never for the narrative), footnote references are
left out and footnote bodies are ``note`` blocks.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from ...errors import IngestError
from .document import Document, Para, TocEntry, is_scene_break

XHTML = "{http://www.w3.org/1999/xhtml}"
EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "aside",
    "header",
    "footer",
    "main",
    "blockquote",
    "li",
    "ol",
    "ul",
    "dl",
    "dt",
    "dd",
    "table",
    "tbody",
    "thead",
    "tr",
    "td",
    "th",
    "figure",
    "figcaption",
    "pre",
    "address",
    "center",
    "hgroup",
    "nav",
    "body",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
}
_SKIP = {"script", "style", "head", "title", "svg", "math"}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_NOTE_TYPES = {"footnote", "endnote", "rearnote", "note", "footnotes", "endnotes", "rearnotes"}
_NOTEREF = {"noteref"}
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_WS = re.compile(r"[ \t\r\n\f\u00a0]+")


def _local(tag: object) -> str:
    return tag.split("}", 1)[1] if isinstance(tag, str) and "}" in tag else str(tag)


def _tokens(el: etree._Element) -> list[str]:
    """epub:type, role and class tokens of an element (lowercased)."""
    out: list[str] = []
    for attr in (EPUB_TYPE, "role", "class", "type"):
        value = el.get(attr)
        if value:
            out += [t.lower().split(":")[-1] for t in value.split()]
    return out


class _Inline:
    """Markdown text of an element's inline content (whitespace collapsed the way browsers collapse it)."""

    def __init__(self, internal_links: list[int]) -> None:
        self.parts: list[str] = []
        self.internal_links = internal_links

    def add(self, text: str | None) -> None:
        if text:
            self.parts.append(text)

    def walk(self, el: etree._Element) -> None:
        tag = _local(el.tag)
        if tag in _SKIP or not isinstance(el.tag, str):
            self.add(el.tail if isinstance(el.tag, str) else None)
            return
        types = set(_tokens(el))
        if tag == "br":
            self.parts.append("\n")
        elif tag == "img":
            alt = (el.get("alt") or "").strip()
            if len(alt) == 1 and alt.isalpha():
                self.parts.append(alt)  # an image drop cap with its letter as alt text
        elif (
            tag == "a"
            and types & _NOTEREF
            or tag == "sup"
            and el.find(f"{XHTML}a") is not None
            and len("".join(el.itertext()).strip()) <= 4
        ):
            pass  # a footnote reference: the note's text is kept with the notes, not in the sentence
        else:
            mark = "*" if tag in ("em", "i", "cite", "dfn", "var") else "**" if tag in ("strong", "b") else ""
            if tag == "a" and el.get("href") and not re.match(r"[a-z][a-z0-9+.-]*:", el.get("href") or ""):
                self.internal_links[0] += 1  # a link into the book: contents lists are made of them
            inner = _Inline(self.internal_links)
            inner.add(el.text)
            for child in el:
                inner.walk(child)
            text = "".join(inner.parts)
            if mark and text.strip():
                lead = text[: len(text) - len(text.lstrip())]
                trail = text[len(text.rstrip()) :]
                self.parts.append(f"{lead}{mark}{text.strip()}{mark}{trail}")
            else:
                self.parts.append(text)
        self.add(el.tail)

    def text(self) -> str:
        raw = _ZERO_WIDTH.sub("", "".join(self.parts))
        lines = [_WS.sub(" ", ln).strip() for ln in raw.split("\n")]
        return "\n".join(ln for ln in lines if ln)


class _Walker:
    def __init__(self, file_index: int) -> None:
        self.file = file_index
        self.paras: list[Para] = []
        self.pending_ids: list[str] = []
        self.anchors: dict[str, int] = {}  # id -> index of the paragraph it marks

    def _emit(self, para: Para) -> None:
        if para.kind in ("p", "verse") and is_scene_break(para.text):
            para = para.model_copy(update={"text": "* * *", "kind": "break", "lines": 1})
        para.ids = self.pending_ids + para.ids
        for i in para.ids:
            self.anchors.setdefault(i, len(self.paras))
        self.pending_ids = []
        self.paras.append(para)

    def _collect_ids(self, el: etree._Element) -> None:
        for node in el.iter():
            if isinstance(node.tag, str) and node.get("id"):
                self.pending_ids.append(node.get("id"))

    def _leaf(self, el: etree._Element, types: list[str]) -> None:
        tag = _local(el.tag)
        links = [0]
        inline = _Inline(links)
        inline.add(el.text)
        for child in el:
            inline.walk(child)
        text = inline.text()
        self._collect_ids(el)
        images = [n for n in el.iter(f"{XHTML}img")]
        if not text:
            if images:
                alt = " ".join((n.get("alt") or "").strip() for n in images).strip()
                self._emit(Para(text=alt or "[image]", kind="figure", types=types, file=self.file))
            return
        kind = "p"
        level = None
        lines = text.count("\n") + 1
        if tag in _HEADINGS:
            kind, level = "heading", _HEADINGS[tag]
            text = " ".join(text.split())  # 'CHAPTER I.<br/>MY EAGLE' is one heading line (``lines`` keeps two)
        elif set(types) & _NOTE_TYPES:
            kind = "note"
        elif "\n" in text:
            kind = "verse"
        para_types = list(types) + (
            ["internal-links"] if links[0] and links[0] >= max(2, len(text.split()) // 12) else []
        )
        self._emit(Para(text=text, kind=kind, level=level, types=para_types, file=self.file, lines=lines))

    def walk(self, el: etree._Element, types: list[str]) -> None:
        tag = _local(el.tag)
        if not isinstance(el.tag, str) or tag in _SKIP:
            return
        here = _tokens(el)
        if el.get("id") and tag in ("section", "div", "article", "aside", "body", "nav"):
            here.append(f"#{el.get('id').lower()}")
        types = types + [t for t in here if t not in types]
        if tag == "hr":
            self._emit(Para(text="* * *", kind="break", types=types, file=self.file))
            return
        has_block = any(isinstance(c.tag, str) and _local(c.tag) in _BLOCK for c in el)
        if tag in _HEADINGS or tag == "pre" or not has_block:
            self._leaf(el, types)
            return
        if el.get("id"):
            self.pending_ids.append(el.get("id"))
        # mixed content: text runs between block children are paragraphs of their own
        run = _Inline([0])
        run.add(el.text)
        for child in el:
            if isinstance(child.tag, str) and _local(child.tag) in _BLOCK:
                self._flush(run, types)
                run = _Inline([0])
                self.walk(child, types)
                run.add(child.tail)
            else:
                run.walk(child)
        self._flush(run, types)

    def _flush(self, run: _Inline, types: list[str]) -> None:
        text = run.text()
        if text:
            self._emit(
                Para(
                    text=text,
                    kind="verse" if "\n" in text else "p",
                    types=list(types),
                    file=self.file,
                    lines=text.count("\n") + 1,
                )
            )


def _parse_xml(data: bytes, name: str, source: Path) -> etree._Element:
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise IngestError(f"cannot parse {name} ({exc})", path=source, step="ingest") from None
    if root is None:
        raise IngestError(f"{name} is empty or not XML", path=source, step="ingest")
    return root


def _opf(zf: zipfile.ZipFile, source: Path) -> tuple[str, etree._Element]:
    container = _parse_xml(zf.read("META-INF/container.xml"), "META-INF/container.xml", source)
    rootfile = next((el.get("full-path") for el in container.iter() if _local(el.tag) == "rootfile"), None)
    if not rootfile or rootfile not in zf.namelist():
        raise IngestError("META-INF/container.xml names no package document", path=source, step="ingest")
    return rootfile, _parse_xml(zf.read(rootfile), rootfile, source)


def _resolve(base: str, href: str) -> tuple[str, str | None]:
    path, _, frag = unquote(href).partition("#")
    full = posixpath.normpath(posixpath.join(posixpath.dirname(base), path)) if path else base
    return full, frag or None


def _toc(
    zf: zipfile.ZipFile, opf_path: str, opf: etree._Element, manifest: dict[str, tuple[str, str, str]], source: Path
) -> list[tuple[str, int, str, str | None, str]]:
    """(label, depth, file, fragment, href) of the navigation: the EPUB 3 nav, else the NCX."""
    nav = next((href for href, _mt, props in manifest.values() if "nav" in props.split()), None)
    out: list[tuple[str, int, str, str | None, str]] = []
    if nav and nav in zf.namelist():
        root = _parse_xml(zf.read(nav), nav, source)
        for el in root.iter(f"{XHTML}nav"):
            if "toc" not in _tokens(el):
                continue

            def walk(ol: etree._Element, depth: int) -> None:
                for li in ol.findall(f"{XHTML}li"):
                    a = li.find(f"{XHTML}a")
                    if a is not None and a.get("href"):
                        label = _WS.sub(" ", "".join(a.itertext())).strip()
                        file, frag = _resolve(nav, a.get("href"))
                        out.append((label, depth, file, frag, a.get("href")))
                    for sub in li.findall(f"{XHTML}ol"):
                        walk(sub, depth + 1)

            for ol in el.findall(f"{XHTML}ol"):
                walk(ol, 0)
        if out:
            return out
    spine = next((el for el in opf.iter() if _local(el.tag) == "spine"), None)
    ncx_id = spine.get("toc") if spine is not None else None
    ncx = manifest.get(ncx_id or "", (None, "", ""))[0] or next(
        (href for href, mt, _ in manifest.values() if mt == "application/x-dtbncx+xml"), None
    )
    if ncx and ncx in zf.namelist():
        root = _parse_xml(zf.read(ncx), ncx, source)

        def walk_ncx(parent: etree._Element, depth: int) -> None:
            for point in parent:
                if _local(point.tag) != "navPoint":
                    continue
                label_el = next((t for t in point.iter() if _local(t.tag) == "text"), None)
                content = next((c for c in point if _local(c.tag) == "content"), None)
                if content is not None and content.get("src"):
                    label = _WS.sub(" ", "".join(label_el.itertext()) if label_el is not None else "").strip()
                    file, frag = _resolve(ncx, content.get("src"))
                    out.append((label, depth, file, frag, content.get("src")))
                walk_ncx(point, depth + 1)

        nav_map = next((el for el in root.iter() if _local(el.tag) == "navMap"), None)
        if nav_map is not None:
            walk_ncx(nav_map, 0)
    return out


def read_epub(path: str | Path) -> Document:
    """The EPUB's spine as paragraphs, its navigation resolved to paragraph indices."""
    source = Path(path)
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise IngestError(f"corrupt EPUB: not a valid zip archive ({exc})", path=source, step="ingest") from None
    with zf:
        opf_path, opf = _opf(zf, source)
        manifest: dict[str, tuple[str, str, str]] = {}
        for el in opf.iter():
            if _local(el.tag) == "item" and el.get("id") and el.get("href"):
                href = posixpath.normpath(posixpath.join(posixpath.dirname(opf_path), unquote(el.get("href"))))
                manifest[el.get("id")] = (href, el.get("media-type", ""), el.get("properties", ""))
        spine = [
            manifest[ref.get("idref")][0]
            for ref in opf.iter()
            if _local(ref.tag) == "itemref" and ref.get("idref") in manifest and ref.get("linear", "yes") != "no"
        ]
        paras: list[Para] = []
        anchors: dict[tuple[str, str | None], int] = {}
        for index, name in enumerate(spine):
            if name not in zf.namelist():
                continue
            root = _parse_xml(zf.read(name), name, source)
            body = next((el for el in root.iter() if _local(el.tag) == "body"), None)
            if body is None:
                continue
            walker = _Walker(index)
            walker.walk(body, [])
            offset = len(paras)
            anchors[(name, None)] = offset
            for anchor, i in walker.anchors.items():
                anchors[(name, anchor)] = offset + i
            paras.extend(walker.paras)
        toc: list[TocEntry] = []
        for label, depth, file, frag, href in _toc(zf, opf_path, opf, manifest, source):
            target = anchors.get((file, frag), anchors.get((file, None)))
            if target is not None and target >= len(paras):
                target = None
            toc.append(TocEntry(label=label, depth=depth, para=target, target=href))
            if target is not None:
                paras[target].toc.append(len(toc) - 1)
    if not paras:
        raise IngestError("the EPUB's spine holds no text", path=source, step="ingest")
    return Document(format="epub", paras=paras, toc=toc)

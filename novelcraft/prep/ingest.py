"""Stage 1 - ingest: EPUB, Gutenberg plain text or Markdown -> paragraphs with their structural signals + metadata."""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

from pydantic import BaseModel, Field

from ..errors import IngestError
from ..io import sha256_file
from .structure.document import Document
from .structure.encoding import decode_text
from .structure.epub_reader import read_epub
from .structure.text_reader import read_text

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".epub", ".txt", ".md", ".markdown")
_FONT_SUFFIXES = (".ttf", ".otf", ".woff", ".woff2")


class SourceMeta(BaseModel):
    """What the source file says about itself."""

    title: str | None = None
    author: str | None = None
    language: str | None = None
    source_id: str | None = None
    source_file: str
    source_sha256: str
    format: str
    encoding: str | None = Field(None, description="plain text: the codec and why it was chosen")


class RawBook(BaseModel):
    """Stage 1 output: the book as paragraphs with their signals (``01_ingest.json``) and its metadata."""

    document: Document
    meta: SourceMeta


# --------------------------------------------------------------------------- EPUB


def check_epub(path: Path) -> None:
    """Raise :class:`IngestError` for a file that is not a readable, DRM-free EPUB."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            bad = zf.testzip()
            if bad is not None:
                raise IngestError(f"corrupt EPUB: member '{bad}' fails its CRC check", path=path, step="ingest")
            if "META-INF/container.xml" not in names:
                raise IngestError("not an EPUB: META-INF/container.xml is missing", path=path, step="ingest")
            if "META-INF/rights.xml" in names:
                raise IngestError("DRM-protected EPUB (META-INF/rights.xml present)", path=path, step="ingest")
            if "META-INF/encryption.xml" in names:
                enc = zf.read("META-INF/encryption.xml").decode("utf-8", "replace")
                uris = re.findall(r'CipherReference[^>]*URI="([^"]+)"', enc)
                # Font obfuscation also uses encryption.xml; only encrypted text is DRM.
                if any(not u.lower().endswith(_FONT_SUFFIXES) for u in uris):
                    raise IngestError(
                        "DRM-protected EPUB (content files are encrypted, see META-INF/encryption.xml)",
                        path=path,
                        step="ingest",
                    )
    except zipfile.BadZipFile as exc:
        raise IngestError(f"corrupt EPUB: not a valid zip archive ({exc})", path=path, step="ingest") from None


def epub_metadata(path: Path) -> dict[str, str | None]:
    """Title, author, language and Gutenberg id from the EPUB's OPF metadata (ebooklib)."""
    import warnings

    try:
        from ebooklib import epub
    except ImportError as exc:  # pragma: no cover - core dependency
        raise IngestError("ebooklib is not installed", path=path, step="ingest") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            book = epub.read_epub(str(path), options={"ignore_ncx": True})
        except Exception as exc:
            raise IngestError(f"cannot read EPUB metadata ({exc})", path=path, step="ingest") from None

    def first(name: str) -> str | None:
        items = book.get_metadata("DC", name)
        return str(items[0][0]).strip() if items and items[0][0] else None

    identifier = " ".join(str(i[0]) for i in book.get_metadata("DC", "identifier"))
    m = re.search(r"gutenberg\.org/(?:ebooks/)?(\d+)", identifier)
    return {
        "title": first("title"),
        "author": first("creator"),
        "language": first("language"),
        "source_id": f"gutenberg:{m.group(1)}" if m else (identifier or None),
    }


_HEADER_FIELD = re.compile(r"^(Title|Author|Language|Release [Dd]ate)\s*:\s*(.+?)\s*$", re.M)


def gutenberg_header_metadata(text: str) -> dict[str, str | None]:
    """Title/Author/Language and ebook number from a Project Gutenberg header (plain text or Markdown)."""
    head = text[:8000].replace("**", "")
    fields = {k.lower(): v.strip() for k, v in _HEADER_FIELD.findall(head)}
    m = re.search(r"\[e[Bb]ook\s*\\?#(\d+)\\?\]", head)
    return {
        "title": fields.get("title"),
        "author": fields.get("author"),
        "language": fields.get("language"),
        "source_id": f"gutenberg:{m.group(1)}" if m else None,
    }


# --------------------------------------------------------------------------- entry point


def render_document(doc: Document) -> str:
    """``01_ingest.md``: the paragraphs as Markdown, headings with their level, for a person to read."""
    out = []
    for p in doc.paras:
        if p.kind == "heading":
            out.append(f"{'#' * (p.level or 2)} {p.text}")
        elif p.kind == "figure":
            out.append(f"[figure: {p.text}]")
        else:
            out.append(p.text)
    return "\n\n".join(out) + "\n"


def ingest_book(path: str | Path, *, encoding: str | None = None) -> RawBook:
    """Read one source book into paragraphs with their structural signals, plus metadata.

    ``encoding`` forces the codec of a plain-text file (else it is detected, see
    :func:`~novelcraft.prep.structure.encoding.decode_text`). Raises :class:`IngestError` on bad input.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(
            f"unsupported file type '{suffix}' (use {', '.join(SUPPORTED_SUFFIXES)})", path=path, step="ingest"
        )
    if not path.is_file():
        raise IngestError("file not found", path=path, step="ingest")
    if path.stat().st_size == 0:
        raise IngestError("empty file", path=path, step="ingest")
    sha = sha256_file(path)
    if suffix == ".epub":
        check_epub(path)
        document = read_epub(path)
        meta = epub_metadata(path)
        header = gutenberg_header_metadata("\n".join(p.text for p in document.paras[:80]))
        meta = {k: meta.get(k) or header.get(k) for k in meta}
        fmt, decision = "epub", None
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"cannot read ({exc.strerror or exc})", path=path, step="ingest") from None
        decoded = decode_text(data, str(path), encoding)
        document = read_text(decoded.text, markdown=suffix != ".txt", encoding=decoded.decision)
        fmt, decision = ("gutenberg-text" if suffix == ".txt" else "markdown"), decoded.decision
        meta = gutenberg_header_metadata(decoded.text)
        if suffix != ".txt" and not meta.get("title"):
            first = next((p for p in document.paras if p.kind == "heading"), None)
            meta["title"] = first.text if first else None
    if not any(p.text.strip() for p in document.paras):
        raise IngestError("the book has no text", path=path, step="ingest")
    return RawBook(
        document=document,
        meta=SourceMeta(**meta, source_file=path.name, source_sha256=sha, format=fmt, encoding=decision),
    )

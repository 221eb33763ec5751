"""Stage 1 - ingest: EPUB (pandoc), Gutenberg plain text or Markdown -> raw Markdown + source metadata."""

from __future__ import annotations

import logging
import re
import zipfile
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from ..errors import IngestError, NovelcraftError
from ..io import sha256_file
from ..pandoc import run_pandoc

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".epub", ".txt", ".md", ".markdown")
PANDOC_ARGS = ["--wrap=none"]
PANDOC_FORMAT = "gfm-smart-raw_html"
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


class RawBook(BaseModel):
    markdown: str
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


def epub_to_markdown(path: str | Path) -> str:
    """Convert an EPUB with pandoc 3 (``-t gfm-smart-raw_html --wrap=none``, one-line headings)."""
    path = Path(path)
    check_epub(path)
    with resources.as_file(resources.files("novelcraft.resources") / "headings.lua") as lua:
        args = ["-f", "epub", "-t", PANDOC_FORMAT, *PANDOC_ARGS, "--lua-filter", str(lua), str(path)]
        try:
            return run_pandoc(args, path=path, step="ingest").decode("utf-8")
        except NovelcraftError as exc:
            raise IngestError(exc.cause, path=path, step="ingest") from None


# --------------------------------------------------------------------------- plain text / Markdown


def decode_utf8(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be decoded; "
            "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            path=path,
            step="ingest",
        ) from None


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


def unwrap_plain_text(text: str) -> str:
    """Hard-wrapped Gutenberg text -> one line per paragraph, ``_italics_`` -> ``*italics*``.

    Paragraphs whose lines are indented (verse, letters' addresses) keep their line breaks.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = re.split(r"\n[ \t]*\n+", text)
    out = []
    for para in paragraphs:
        lines = [ln.rstrip() for ln in para.split("\n") if ln.strip()]
        if not lines:
            continue
        if len(lines) > 1 and all(ln.startswith((" ", "\t")) for ln in lines):
            out.append("\n".join(ln.strip() for ln in lines))
        else:
            out.append(" ".join(ln.strip() for ln in lines))
    joined = "\n\n".join(out)
    return re.sub(r"(?<![\w*])_([^_\n]+?)_(?![\w*])", r"*\1*", joined)


# --------------------------------------------------------------------------- entry point


def ingest_book(path: str | Path) -> RawBook:
    """Read one source book into Markdown plus metadata. Raises :class:`IngestError` on bad input."""
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
        markdown = epub_to_markdown(path)
        meta = epub_metadata(path)
        header = gutenberg_header_metadata(markdown)
        meta = {k: meta.get(k) or header.get(k) for k in meta}
        fmt = "epub"
    else:
        raw = decode_utf8(path.read_bytes(), path)
        if suffix == ".txt":
            markdown = unwrap_plain_text(raw)
            fmt = "gutenberg-text"
        else:
            markdown = raw.replace("\r\n", "\n")
            fmt = "markdown"
        meta = gutenberg_header_metadata(raw)
        if suffix != ".txt" and not meta.get("title"):
            m = re.search(r"^#\s+(.+)$", markdown, re.M)
            meta["title"] = m.group(1).strip() if m else None
    if not markdown.strip():
        raise IngestError("the book has no text", path=path, step="ingest")
    return RawBook(
        markdown=markdown,
        meta=SourceMeta(**meta, source_file=path.name, source_sha256=sha, format=fmt),
    )

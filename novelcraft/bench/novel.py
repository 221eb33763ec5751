"""The input of the benchmark: a novel as ordered scenes, loaded from Book JSON, Markdown or Novel JSON.

A generated novel and a human one are scored the same way, so both are first turned into a
:class:`Novel`. Loaders:

* :func:`novel_from_book` - a prepared :class:`~novelcraft.models.Book` (narrative scenes only);
* :func:`parse_markdown_novel` - a plain Markdown novel: an optional ``# Title`` line, chapters under
  ``# Chapter N[: Title]`` (or ``##``) headings, scenes separated by a break line (``***``, ``* * *``,
  ``---``, ``#``, ``⁂``). Optional HTML comments right after a break or heading carry scene metadata:
  ``<!-- goal: ... -->``, ``<!-- target_words: 1800 -->`` and ``<!-- summary: ... -->`` (multi-line allowed);
* :func:`load_novel` - by file: ``.md``/``.markdown``/``.txt`` Markdown, ``.json`` Book JSON or Novel JSON
  (``Novel.model_dump_json()``), ``.epub`` prepared in memory with the default prep recipe.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..errors import NovelcraftError
from ..models import Book, Novel, NovelScene, NovelSource

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

# --------------------------------------------------------------------------- Book JSON


_HEADING_LINE = re.compile(r"^\s*#{1,6}\s+[^\n]*\n+")


def _strip_heading(text: str) -> str:
    """Scene text without the chapter heading that the first scene of a chapter starts with."""
    return _HEADING_LINE.sub("", text, count=1).strip() or text.strip()


def novel_from_book(book: Book, *, path: str | None = None, source: NovelSource = "human") -> Novel:
    """The narrative scenes of a prepared book (reference scenes are left out) as a :class:`Novel`."""
    scenes: list[NovelScene] = []
    for sc in book.scenes:
        if sc.is_reference:
            continue
        scenes.append(
            NovelScene(
                index=len(scenes) + 1,
                text=_strip_heading(sc.text),
                chapter=sc.chapter_index,
                chapter_title=sc.chapter_title,
                goal=sc.instruction,
                summary=sc.running_summary,
            )
        )
    if not scenes:
        raise NovelcraftError("the book has no narrative scenes", path=path, step="bench.load")
    return Novel(title=book.meta.title, source=source, path=path, scenes=scenes)


# --------------------------------------------------------------------------- Markdown

_CHAPTER = re.compile(r"^#{1,2}\s+(?:chapter|letter)\b[^\n]*$", re.IGNORECASE | re.MULTILINE)
_CHAPTER_PARTS = re.compile(r"^#{1,2}\s+(?:chapter|letter)\s*([0-9]+|[ivxlcdm]+)?\s*[:.\-–—]?\s*(.*)$", re.IGNORECASE)
_BREAK = re.compile(r"^\s*(?:\*\s*\*\s*\*[\s*]*|-{3,}|_{3,}|#|⁂|§)\s*$")
_META = re.compile(r"<!--\s*(goal|summary|target_words)\s*:\s*(.*?)\s*-->", re.IGNORECASE | re.DOTALL)
_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}


def _roman(s: str) -> int | None:
    total, prev = 0, 0
    for ch in reversed(s.lower()):
        v = _ROMAN.get(ch)
        if v is None:
            return None
        total = total - v if v < prev else total + v
        prev = max(prev, v)
    return total or None


def _scene_from_chunk(
    chunk: str, index: int, chapter: int | None, chapter_title: str | None, source: str
) -> NovelScene | None:
    meta: dict[str, str] = {}
    for m in _META.finditer(chunk):
        meta[m.group(1).lower()] = m.group(2).strip()
    text = _META.sub("", chunk).strip()
    if not text:
        return None
    target = None
    if "target_words" in meta:
        try:
            target = int(meta["target_words"])
        except ValueError:
            raise NovelcraftError(
                f"scene {index}: target_words must be an integer, got {meta['target_words']!r}",
                path=source,
                step="bench.load",
            ) from None
    return NovelScene(
        index=index,
        text=text,
        chapter=chapter,
        chapter_title=chapter_title,
        goal=meta.get("goal") or None,
        summary=meta.get("summary") or None,
        target_words=target,
    )


def parse_markdown_novel(
    markdown: str, *, title: str | None = None, source: NovelSource = "generated", path: str | None = None
) -> Novel:
    """Parse a Markdown novel (see the module docstring for the format) into scenes.

    A text without chapter headings is one chapter; a text without scene breaks has one scene per chapter.
    """
    text = markdown.replace("\r\n", "\n")
    first = re.match(r"^\s*#\s+(?!(?:chapter|letter)\b)([^\n]+)\n", text, re.IGNORECASE)
    if first:
        title = title or first.group(1).strip()
        text = text[first.end() :]
    heads = list(_CHAPTER.finditer(text))
    spans: list[tuple[int | None, str | None, str]] = []
    if not heads:
        spans.append((None, None, text))
    else:
        if text[: heads[0].start()].strip():
            spans.append((0, None, text[: heads[0].start()]))
        for n, h in enumerate(heads):
            end = heads[n + 1].start() if n + 1 < len(heads) else len(text)
            m = _CHAPTER_PARTS.match(h.group(0).strip())
            number: int | None = n + 1
            chapter_title = None
            if m:
                raw = m.group(1)
                if raw:
                    number = int(raw) if raw.isdigit() else (_roman(raw) or n + 1)
                chapter_title = m.group(2).strip() or None
            spans.append((number, chapter_title, text[h.end() : end]))
    scenes: list[NovelScene] = []
    for number, chapter_title, body in spans:
        chunk: list[str] = []
        chunks: list[str] = []
        for line in body.split("\n"):
            if _BREAK.match(line):
                chunks.append("\n".join(chunk))
                chunk = []
            else:
                chunk.append(line)
        chunks.append("\n".join(chunk))
        for c in chunks:
            scene = _scene_from_chunk(c, len(scenes) + 1, number, chapter_title, path or "<markdown>")
            if scene is not None:
                scenes.append(scene)
    if not scenes:
        raise NovelcraftError("the Markdown novel has no scene text", path=path, step="bench.load")
    return Novel(title=title or (Path(path).stem if path else "untitled"), source=source, path=path, scenes=scenes)


# --------------------------------------------------------------------------- files


def load_novel(path: str | Path, *, source: NovelSource | None = None, counter: TokenCounter | None = None) -> Novel:
    """Read a novel from Markdown, Book JSON, Novel JSON or an EPUB (prepared with the default prep recipe).

    ``source`` defaults to ``human`` for Book JSON and EPUB, ``generated`` for Markdown; a Novel JSON
    keeps its own unless ``source`` is given.
    """
    p = Path(path)
    if not p.is_file():
        raise NovelcraftError("no such file", path=p, step="bench.load")
    suffix = p.suffix.lower()
    if suffix in (".md", ".markdown", ".txt"):
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NovelcraftError(f"cannot read ({exc})", path=p, step="bench.load") from None
        return parse_markdown_novel(text, source=source or "generated", path=str(p))
    if suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise NovelcraftError(f"not a JSON file ({exc})", path=p, step="bench.load") from None
        if isinstance(data, dict) and "meta" in data and "chapters" in data:
            try:
                book = Book.model_validate(data)
            except ValidationError as exc:
                raise NovelcraftError(
                    f"not a valid Book JSON: {exc.errors()[0]['msg']}", path=p, step="bench.load"
                ) from None
            return novel_from_book(book, path=str(p), source=source or "human")
        try:
            novel = Novel.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise NovelcraftError(
                f"neither a Book JSON nor a Novel JSON ({loc}: {err['msg']})", path=p, step="bench.load"
            ) from None
        update: dict[str, object] = {"path": str(p)}
        if source:
            update["source"] = source
        return novel.model_copy(update=update)
    if suffix == ".epub":
        from ..prep.book import prep_book
        from ..prep.recipe import PrepRecipe
        from ..tokens import load_token_counter

        recipe = PrepRecipe(name="bench", books=[str(p)])
        book = prep_book(p, recipe, counter or load_token_counter(recipe.tokenizer))
        return novel_from_book(book, path=str(p), source=source or "human")
    raise NovelcraftError(
        f"unsupported novel file type '{suffix}' (use .md, .json or .epub)", path=p, step="bench.load"
    )

"""Plain text (Gutenberg ``.txt``, wrapped or one line per paragraph) and Markdown -> :class:`Document`.

Paragraphs are runs of non-blank lines. Each keeps the layout signals a heading detector needs: how many
blank lines precede it, its indentation, whether a short line is centred, how many lines it had. Wrapped
prose is joined into one line; verse (short lines, each a unit) keeps its line breaks; ``_italics_`` become
``*italics*``. Markdown ``#`` headings keep their level.
"""

from __future__ import annotations

import re
import statistics

from .document import Document, Para, is_scene_break

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$|^\s*(?:\*\s*){3,}$")
_ITALIC = re.compile(r"(?<![\w*])_([^_\n]+?)_(?![\w*])")
_PUNCT_END = re.compile(r"[,;:.!?'’”\"\-—)]$")
_STRAY_TAG = re.compile(r"<?\b(?:br|p|hr)\s*/?>", re.I)  # HTML left in a text file ("LVI.br/>")


def unwrapped(lines: list[str]) -> bool:
    """One line per paragraph: a good share of the lines run far past any wrap width."""
    filled = [ln for ln in lines if len(ln.strip()) >= 40]
    return len(filled) >= 20 and sum(1 for ln in filled if len(ln) > 200) >= 0.25 * len(filled)


def _split(text: str) -> list[tuple[int, int, list[str]]]:
    """(line number, blank lines before, lines) of every paragraph; in unwrapped text every line is one."""
    out: list[tuple[int, int, list[str]]] = []
    lines = text.split("\n")
    one_per_line = unwrapped(lines)
    blanks = 0
    cur: list[str] = []
    start = 0
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip().replace("\t", "    ")
        if line.strip():
            if cur and one_per_line:
                out.append((start, blanks, cur))
                cur, blanks = [], 0
            if not cur:
                start = n
            cur.append(line)
            continue
        if cur:
            out.append((start, blanks, cur))
            cur, blanks = [], 0
        blanks += 1
    if cur:
        out.append((start, blanks, cur))
    return out


def wrap_width(paragraphs: list[tuple[int, int, list[str]]]) -> int | None:
    """The width prose lines are wrapped at (90th percentile of the lengths of multi-line paragraphs' lines);
    None when the text is unwrapped (one line per paragraph)."""
    lengths = [len(ln.strip()) for _, _, ls in paragraphs if len(ls) > 1 for ln in ls[:-1]]
    if len(lengths) < 20:
        return None
    lengths.sort()
    width = lengths[int(0.9 * (len(lengths) - 1))]
    return width if width <= 140 else None


def _is_verse(lines: list[str], width: int | None, base_indent: int) -> bool:
    """Lines that are units of their own: all indented past the margin, or short capitalised lines that end
    with punctuation where prose would run on to the margin."""
    if len(lines) < 2:
        return False
    indents = [len(ln) - len(ln.lstrip()) for ln in lines]
    if min(indents) > base_indent + 1:
        return True
    if width is None:
        return False
    stripped = [ln.strip() for ln in lines]
    capital = sum(1 for s in stripped if s[:1].isupper() or s[:1] in "\"'“‘(") / len(stripped)
    ends = sum(1 for s in stripped[:-1] if _PUNCT_END.search(s)) / max(1, len(stripped) - 1)
    longest = max(len(s) for s in stripped)
    return capital >= 0.75 and ends >= 0.6 and longest < 0.85 * width


def _centered(line: str, indent: int, width: int | None, base_indent: int) -> bool:
    text_len = len(line.strip())
    if indent - base_indent >= 8 and text_len <= 60:
        return True
    return bool(width and indent - base_indent >= 3 and abs((indent + text_len / 2) - width / 2) <= 0.15 * width)


def read_text(text: str, *, markdown: bool = False, encoding: str | None = None) -> Document:
    """Paragraphs of a plain-text (or Markdown) book with their layout signals."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    paragraphs = _split(text)
    width = wrap_width(paragraphs)
    indents = [min(len(ln) - len(ln.lstrip()) for ln in ls) for _, _, ls in paragraphs]
    base_indent = int(statistics.median(indents)) if indents else 0
    paras: list[Para] = []
    for (start, before, lines), indent in zip(paragraphs, indents):
        first = lines[0].strip()
        if markdown and len(lines) == 1 and (m := _ATX.match(first)):
            paras.append(
                Para(text=m.group(2).strip(), kind="heading", level=len(m.group(1)), before=before, line=start)
            )
            continue
        if (len(lines) == 1 and _RULE.match(first)) or is_scene_break("\n".join(lines)):
            paras.append(Para(text="* * *", kind="break", before=before, indent=indent, line=start))
            continue
        verse = _is_verse(lines, width, base_indent)
        body = "\n".join(ln.strip() for ln in lines) if verse else " ".join(ln.strip() for ln in lines)
        body = _STRAY_TAG.sub(" ", body)
        body = _ITALIC.sub(r"*\1*", re.sub(r"[ \u00a0]{2,}", "  ", body) if verse else re.sub(r"\s+", " ", body))
        paras.append(
            Para(
                text=body,
                kind="verse" if verse else "p",
                before=before,
                indent=max(0, indent - base_indent),
                centered=len(lines) <= 2 and _centered(lines[0], indent, width, base_indent),
                lines=len(lines),
                line=start,
            )
        )
    return Document(
        format="markdown" if markdown else "gutenberg-text", paras=paras, encoding=encoding, wrap_width=width
    )

"""Residue inside the narrative: illustration markers, image file names, page numbers, footnote numbers.

Each remover returns the cleaned text and what it took out, so the structure report can count residue.
"""

from __future__ import annotations

import re

from .document import Para

_ILLUSTRATION = re.compile(r"\[\s*(?:illustration|ill\.|image|picture|figure|frontispiece|sidenote)\b[^\]]*\]", re.I)
_BRACE_ILLUSTRATION = re.compile(r"\{\s*(?:illustration|image)[^}]*\}", re.I)
_IMAGE_FILE = re.compile(r"\b[\w@.-]+\.(?:jpe?g|png|gif|svg|tiff?|bmp)\b(?:\s*\(\d+\s*[kKmM]\))?", re.I)
_IMAGE_ONLY = re.compile(
    r"^\W*(?:full\s*size|enlarge|larger image|\[?\s*image\s*\]?|\d{3,5}[a-z]?|"
    r"(?:[\w@.-]+\.(?:jpe?g|png|gif|svg)\b(?:\s*\(\d+\s*k\))?\W*)+)\W*$",
    re.I,
)
_PAGE = re.compile(r"\{\s*(?:pg\.?|p\.|page)?\s*\d{1,4}\s*\}|\[\s*(?:pg\.?|p\.|page)\s*\d{1,4}\s*\]", re.I)
_NOTE_MARK = re.compile(r"[ \t]*\[\s*(?:\d{1,3}[a-z]?|[*†‡§])\s*\]")
#: a note number glued to the end of a word or sentence ("shade.300", "s'en va.70")
GLUED_NOTE = re.compile(r"(?<=[^\W\d_][.,;:!?’”'\")\]])(\d{1,4})(?=\s|$)")
_NOTE_DEF = re.compile(r"^\s*\[\s*(\d{1,3}[a-z]?|[*†‡§])\s*\]\s*(.+)$", re.S)


def is_figure_residue(p: Para) -> bool:
    """A paragraph that is only an illustration marker or image file name ('[Illustration: ...]', 'p007.jpg
    (150K)', 'Full Size', a placeholder like '0029m')."""
    t = p.text.strip()
    if p.kind == "figure":
        return True
    if not t:
        return True
    if _ILLUSTRATION.fullmatch(t) or _BRACE_ILLUSTRATION.fullmatch(t):
        return True
    return bool(_IMAGE_ONLY.match(t)) and len(t) <= 80


def note_definition(text: str) -> tuple[str, str] | None:
    """``[12] The note's text`` -> ('12', "The note's text")."""
    m = _NOTE_DEF.match(text)
    return (m.group(1), m.group(2).strip()) if m and len(m.group(2).split()) >= 2 else None


def clean_text(text: str, *, glued_notes: bool = False) -> tuple[str, dict[str, int]]:
    """``text`` without illustration markers, image names, page numbers and note markers (with counts)."""
    counts: dict[str, int] = {}

    def sub(pattern: re.Pattern[str], key: str, s: str) -> str:
        out, n = pattern.subn("", s)
        if n:
            counts[key] = counts.get(key, 0) + n
        return out

    t = sub(_ILLUSTRATION, "illustration markers", text)
    t = sub(_BRACE_ILLUSTRATION, "illustration markers", t)
    t = sub(_IMAGE_FILE, "image file names", t)
    t = sub(_PAGE, "page numbers", t)
    t = sub(_NOTE_MARK, "footnote markers", t)
    if glued_notes:
        t = sub(GLUED_NOTE, "glued footnote numbers", t)
    if t != text:
        t = "\n".join(re.sub(r"[ \t]{2,}", " ", ln).strip() for ln in t.split("\n"))
    return t.strip(), counts


def count_glued_notes(paras: list[Para]) -> int:
    return sum(len(GLUED_NOTE.findall(p.text)) for p in paras)

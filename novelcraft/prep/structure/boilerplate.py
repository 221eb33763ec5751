"""Project Gutenberg's header and footer in their historical forms, found in a paragraph stream.

Forms seen over three decades: ``*** START OF THIS/THE PROJECT GUTENBERG EBOOK X ***`` (with or without
spaces), ``*END*THE SMALL PRINT!``, a header of ``Title:`` / ``Author:`` / ``Release Date:`` lines with no
START marker, producer credits after it; at the end ``*** END OF ... ***``, ``End of the Project
Gutenberg EBook of X``, ``End of Project Gutenberg's X``, the full licence, ``Updated editions will
replace the previous one``. Either end may be missing (a copy stripped by its owner keeps the other).
EPUBs mark them too (``pg-header`` / ``pg-footer`` sections).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .document import Para

_START = re.compile(
    r"^\W*(?:\*{2,}\s*)?start\s*(?:of\s*)?(?:(?:the|this)\s*)?project\s*gutenberg|^\W*\*?end\*?\s*the small print",
    re.I,
)
_END = re.compile(
    r"^\W*(?:\*{2,}\s*)?end\s*(?:of\s*)?(?:(?:the|this)\s*)?project\s*gutenberg|"
    r"^\W*end of (?:the )?project gutenberg'?s?\b|"
    r"^\W*\*{2,}\s*start:? full license|^\W*the full project gutenberg(?:-tm)? license|"
    r"^updated editions will replace the previous one|^\W*this file should be named \S+\.(?:txt|zip)",
    re.I,
)
_HEADER_LINE = re.compile(
    r"project gutenberg|gutenberg\.org|gutenberg\.net|^\W*(?:title|author|editor|translator|illustrator|release date|"
    r"posting date|last updated|first posted|language|character set encoding|produced by|credits|ebook #|"
    r"\[ebook|\[etext|most recently updated)\b|\bebook\b.*#\d+|^\W*original publication",
    re.I,
)
_CREDIT = re.compile(
    r"^\W*(?:produced by|e-?text prepared by|transcribed (?:from|by)|this e-?text was prepared|prepared by|"
    r"html version by|updated:|credits?:|digitized by|proofread by|scanned by)",
    re.I,
)
_PG_TYPES = {
    "pgheader",
    "pg-header",
    "#pg-header",
    "pgfooter",
    "pg-footer",
    "#pg-footer",
    "pg-boilerplate",
    "pgboilerplate",
}


@dataclass(frozen=True)
class Boilerplate:
    """Where the book proper starts and ends: ``paras[start:end]``; the rest is Gutenberg's."""

    start: int
    end: int
    header: bool
    footer: bool


def _text(p: Para) -> str:
    return p.text.replace("*", " *").strip()


def find_boilerplate(paras: list[Para]) -> Boilerplate:
    """The Gutenberg header (up to and with its START marker and producer credits) and footer (from its END
    marker, or the licence, on)."""
    n = len(paras)
    start, header = 0, False
    for i, p in enumerate(paras[: min(n, 400)]):
        if _START.search(_text(p)):
            start, header = i + 1, True
            break
    if not header:
        # no START marker: a leading run of header lines ("The Project Gutenberg EBook of ...", "Title:", ...)
        i = 0
        while i < min(n, 120) and (_HEADER_LINE.search(paras[i].text) or set(paras[i].types) & _PG_TYPES):
            i += 1
        if i and any(re.search(r"project gutenberg", paras[k].text, re.I) for k in range(i)):
            start, header = i, True
    else:
        # EPUBs repeat the marker inside the header section: skip what is still marked as boilerplate
        while start < n and set(paras[start].types) & _PG_TYPES:
            start += 1
    while start < n and (_CREDIT.search(paras[start].text) or re.match(r"^\W*$", paras[start].text)):
        start += 1
    end, footer = n, False
    for i in range(max(start, n - 4000), n):
        p = paras[i]
        if _END.search(_text(p)) or ({"pgfooter", "pg-footer", "#pg-footer"} & set(p.types)):
            end, footer = i, True
            break
    return Boilerplate(start=start, end=end, header=header, footer=footer)

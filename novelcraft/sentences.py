"""Sentence spans from pysbd, shared by the continuation data set, the writer's assistant and its benchmark.

pysbd runs paragraph by paragraph (a blank line always ends a sentence) over the paragraph with its line
breaks turned into spaces (hard-wrapped lines are one paragraph; the offsets stay those of the text), so each
sentence is an exact ``(start, end)`` slice of the text, trailing spaces excluded. Pieces without a letter
(``* * *`` ornaments) are no sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import NovelcraftError, setup_hint

_PARAGRAPH_RE = re.compile(r"\S(?:.*?\S)?(?=\n\s*\n|\s*\Z)", re.DOTALL)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text: its character span (trailing spaces excluded)."""

    start: int
    end: int


@lru_cache(maxsize=4)
def _segmenter(language: str) -> Any:
    try:
        import pysbd
    except ImportError:
        raise NovelcraftError(f"sentence splitting needs pysbd ({setup_hint('dev')})", step="sentences") from None
    return pysbd.Segmenter(language=language, clean=False, char_span=True)


def split_sentences(text: str, language: str = "en") -> list[Sentence]:
    """Sentences of ``text`` with pysbd, paragraph by paragraph."""
    seg = _segmenter(language)
    out: list[Sentence] = []
    for para in _PARAGRAPH_RE.finditer(text):
        base = para.start()
        for span in seg.segment(re.sub(r"\s", " ", para.group(0))):
            piece = span.sent
            lead = len(piece) - len(piece.lstrip())
            body = piece.strip()
            if any(ch.isalpha() for ch in body):
                start = base + span.start + lead
                out.append(Sentence(start, start + len(body)))
    return out


def sentence_count(text: str, language: str = "en") -> int:
    """How many sentences ``text`` has."""
    return len(split_sentences(text, language))

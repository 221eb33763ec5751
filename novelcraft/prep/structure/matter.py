"""Front and back matter: what a section that is not narrative is, from its heading and its content.

Kinds (``ReferenceSection.kind``): title page, half title, dedication, epigraph, contents, list of
illustrations, preface / foreword / introduction (by the author) or editor's, translator's and
transcriber's notes (by another hand), characters (dramatis personae), footnotes and notes, appendix,
glossary, index, advertisements (a publisher's catalogue), colophon / imprint, licence, the Gutenberg header
and footer, and the end marker. Headings in English, German and French; EPUB semantics (``epub:type``) win
where the producer set them.
"""

from __future__ import annotations

import re
from typing import get_args

from ...models import MatterKind, ProseKind
from .document import Para
from .headings import normalize
from .inline import is_figure_residue as _is_marker

#: kinds a user may turn into training scenes (``segmentation.reference_kinds``); the others never are.
PROSE_KINDS: tuple[str, ...] = get_args(ProseKind)
#: kinds that are never narrative nor training material.
NEVER_TRAINED: tuple[str, ...] = get_args(MatterKind)

# heading words -> kind, matched against the normalized heading (order matters: the first match wins)
HEADING_KINDS: list[tuple[str, str]] = [
    (
        r"^(?:(?:table of )?contents|inhalt(?:sverzeichnis)?|table des mati[eè]res|sommaire)\b|"
        r"^(?:the )?scenes of the play",
        "contents",
    ),
    (r"^(?:list of )?illustrations\b|^(?:list of )?plates\b|^verzeichnis der (?:bilder|abbildungen)", "illustrations"),
    (
        r"^transcriber'?s? notes?\b|^transcriber|^(?:e-?book|etext) editor'?s? note|^note on the (?:text|e-?text)|"
        r"^produc(?:er|tion) notes?",
        "transcriber_note",
    ),
    (
        r"^translator'?s? (?:preface|note|introduction|foreword)|"
        r"^(?:preface|note|introduction) (?:by|of) the translator",
        "translator_note",
    ),
    (
        r"^editor'?s? (?:preface|note|introduction|foreword)|^publisher'?s? (?:note|preface)|^the publisher to the",
        "editor_note",
    ),
    (r"^(?:a |the )?foreword\b|^vorwort\b|^avant-propos", "foreword"),
    (r"^(?:the )?(?:author'?s? |authors )?preface\b|^(?:\w+'s )?preface\b|^pr[eé]face\b|^vorrede\b", "preface"),
    (
        r"^(?:the )?introduction\b|^introductory\b|^einleitung\b|^an introduction\b|.*\bintroductory to\b",
        "introduction",
    ),
    (r"^dedicat(?:ion|ed)\b|^widmung\b|^d[eé]dicace\b", "dedication"),
    (
        r"^dramatis person|^(?:the )?persons (?:of|in) the|^(?:list of |principal )?characters\b|^cast\b|"
        r"^personen\b|^personnages\b",
        "characters",
    ),
    (r"^(?:foot|end)notes?\b|^notes to\b|^anmerkungen\b", "footnotes"),
    (r"^(?:concluding |explanatory |general |author'?s? )?notes?\b|^a note\b|^explanatory\b", "notes"),
    (r"^appendi(?:x|ces)\b|^anhang\b|^annexe\b", "appendix"),
    (r"^(?:the )?glossary\b|^glossar\b|^glossaire\b", "glossary"),
    (r"^index\b|^register\b", "index"),
    (r"^(?:afterword|postface|nachwort)\b", "afterword"),
    (
        r"^(?:advertisements?|books by|by the same author|also by|other books by|new books|works by|catalogue|"
        r"publishers'? announcements?|recent fiction)\b",
        "advertisement",
    ),
    (r"^(?:colophon|imprint|uncopyright|copyright)\b", "colophon"),
    (r"^etymology\b", "other"),
    (r"^extracts\b", "other"),
]
#: epub:type / role / class tokens -> kind
TYPE_KINDS = {
    "titlepage": "title_page",
    "halftitlepage": "half_title",
    "halftitle": "half_title",
    "imprint": "colophon",
    "colophon": "colophon",
    "copyright-page": "colophon",
    "copyright": "colophon",
    "uncopyright": "license",
    "dedication": "dedication",
    "epigraph": "epigraph",
    "toc": "contents",
    "loi": "illustrations",
    "preface": "preface",
    "foreword": "foreword",
    "introduction": "introduction",
    "appendix": "appendix",
    "glossary": "glossary",
    "index": "index",
    "endnotes": "footnotes",
    "footnotes": "footnotes",
    "rearnotes": "footnotes",
    "afterword": "afterword",
    "acknowledgments": "other",
    "pgheader": "gutenberg",
    "pg-header": "gutenberg",
    "#pg-header": "gutenberg",
    "pgfooter": "gutenberg",
    "pg-footer": "gutenberg",
    "#pg-footer": "gutenberg",
    "dramatis-personae": "characters",
    "cover": "title_page",
}
#: epub:type tokens that mark narrative
NARRATIVE_TYPES = {"chapter", "bodymatter", "part", "volume", "division", "prologue", "epilogue", "conclusion"}

_END_MARKER = re.compile(
    r"^\W*(?:the end|finis|fin|ende|end|the end of (?:the )?(?:book|volume|part|story|novel|"
    r"(?:first|second|third|last) (?:part|book|volume))(?: [ivxlc\d]+)?)\W*$",
    re.I,
)
_CAPS_END = re.compile(r"^\W*(?:THE END|FINIS)\b")
_PRICE = re.compile(r"(?:\$\s?\d|\d+s\.\s?\d*d\.|\bnet\b|\bcloth\b|\billustrated\b.*\d|\bprice\b|\bpost free\b)", re.I)
_BY_LINE = re.compile(r"^\W*(?:by|von|par)\s+\S+", re.I)
_IMPRINT = re.compile(
    r"\b(?:printed (?:by|at|in)|publishers?|press|london|new york|boston|philadelphia|"
    r"edinburgh|leipzig|paris|copyright|all rights reserved|entered according to|\b1[6-9]\d\d\b|20\d\d)\b",
    re.I,
)


def heading_kind(text: str) -> str | None:
    """The matter kind a heading announces ('preface', 'contents'...), or None."""
    h = re.sub(r"[^\w' ]+", " ", normalize(text).replace("’", "'"))
    h = re.sub(r"\s+", " ", h).strip()
    for pattern, kind in HEADING_KINDS:
        if re.search(pattern, h):
            return kind
    return None


def type_kind(types: list[str]) -> str | None:
    """The matter kind the EPUB's semantics give a block (the innermost marked section wins)."""
    for t in reversed(types):
        if t in TYPE_KINDS:
            return TYPE_KINDS[t]
        if t in NARRATIVE_TYPES:
            return None
    return None


def is_end_marker(text: str) -> bool:
    """'THE END', 'FINIS', 'THE END. YOURS TRULY, HUCK FINN.' - a short paragraph that closes the book."""
    t = re.sub(r"[*_]", "", text).strip()
    return len(t.split()) <= 10 and bool(_END_MARKER.match(t) or _CAPS_END.match(t))


def is_title_line(text: str, title: str | None, author: str | None) -> bool:
    """A line of a title page: the title, the author, a by-line, an edition or publisher line."""
    n = normalize(re.sub(r"[^\w' ]+", " ", text))
    n = re.sub(r"\s+", " ", n).strip()
    if not n:
        return True
    if _BY_LINE.match(n) or n.startswith(
        ("the project gutenberg", "illustrated by", "with illustrations", "translated")
    ):
        return True
    words = n.split()
    for ref in (title, author):
        if ref:
            r = re.sub(r"\s+", " ", normalize(re.sub(r"[^\w' ]+", " ", ref))).strip().split()
            # whole words of the title or author, in order ('V.' is not a line of 'The Adventures of ...')
            if r and (_within(words, r) or _within(r, words) or (len(words) >= 3 and words[:3] == r[:3])):
                return True
    if re.fullmatch(r"(?:[a-z] ){3,}[a-z]", n):  # S P A C E D letters
        return True
    return (
        bool(re.search(r"\bedition\b|\bvolume\b|\billustrated\b|^or,? the\b|^or\b|\bcomplete\b", n))
        and len(n.split()) <= 8
    )


def _within(part: list[str], whole: list[str]) -> bool:
    """``part`` is a run of whole words of ``whole``."""
    n = len(part)
    return 0 < n <= len(whole) and any(whole[k : k + n] == part for k in range(len(whole) - n + 1))


_PRODUCER = re.compile(
    r"\be-?books?\b|\be-?text\b|\bproduced by\b|\btranscri(?:bed|ber|ption)\b|\bdigiti[sz]ed\b", re.I
)
_CAST_LINE = re.compile(r"^[^:,]{2,40}(?::|, )\s*\S")


def content_kind(paras: list[Para], *, front: bool, title: str | None, author: str | None) -> str:
    """The kind of an unheaded stretch of matter, from what it holds."""
    texts = [p.text for p in paras if p.kind not in ("break",)]
    words = sum(len(t.split()) for t in texts)
    if not texts:
        return "other"
    if any(set(p.types) & {"internal-links"} for p in paras):
        return "contents"
    if all(_is_marker(p) for p in paras if p.kind != "break"):
        return "title_page"  # a cover: an image and nothing else
    lines = [ln for t in texts for ln in t.splitlines()]
    if front and words <= 150 and sum(1 for t in texts if _PRODUCER.search(t)) >= max(1, len(texts) // 2):
        return "transcriber_note"  # who produced the e-book, where another edition is
    if (
        front
        and len(lines) >= 4
        and sum(1 for ln in lines if len(ln.split()) <= 10 and _CAST_LINE.match(ln)) >= 0.6 * len(lines)
    ):
        return "characters"  # 'John Worthing, J.P.: Mr. George Alexander.' - a cast list
    if front and words <= 150 and sum(1 for t in texts if len(t.split()) <= 14) >= 0.66 * len(texts):
        title_lines = sum(1 for t in texts if is_title_line(t, title, author) or _IMPRINT.search(t))
        if title_lines >= max(1, len(texts) // 2):
            return "title_page"
    if sum(1 for t in texts if _PRICE.search(t)) >= max(2, len(texts) // 3):
        return "advertisement"
    if front and words <= 120 and texts[0].lower().startswith(("to ", "for ", "dedicated")):
        return "dedication"
    if front and words <= 200:
        return "epigraph"
    return "other"

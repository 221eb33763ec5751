"""What a heading line says: its label (chapter, book, act...), its number and its title — in English,
German and French, with arabic, roman, spelled-out and ordinal numbers, ``[ 1 ]``, ``— I —``,
``CHAPTER THE LAST``, ``FIRST ACT``, ``BOOK FIRST—A JUST MAN``, ``Erstes Kapitel``, ``PREMIÈRE PARTIE``.

Pure functions; nothing here knows a book.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# label words -> canonical label; the rank says what usually contains what (lower contains higher)
LABELS: dict[str, str] = {}
for canon, words in {
    "volume": "volume vol tome band",
    "book": "book buch livre libro",
    "part": "part teil partie parte",
    "epoch": "epoch period",
    "act": "act akt acte aufzug",
    "scene": "scene szene scène auftritt",
    "chapter": "chapter chap kapitel chapitre capítulo capitulo capitolo",
    "letter": "letter brief lettre",
    "stave": "stave",
    "canto": "canto gesang chant",
    "section": "section abschnitt",
    "story": "story",
    "episode": "episode",
    "fit": "fit",
    "epilogue": "epilogue epilog épilogue",
    "prologue": "prologue prolog",
}.items():
    for w in words.split():
        LABELS[w] = canon
RANK = {
    "volume": 0,
    "book": 1,
    "part": 1,
    "epoch": 1,
    "act": 2,
    "scene": 4,
    "chapter": 4,
    "letter": 4,
    "stave": 4,
    "canto": 4,
    "section": 5,
    "story": 4,
    "episode": 4,
    "fit": 4,
    "epilogue": 1,
    "prologue": 1,
}

#: unnumbered headings that belong to the narrative itself
NARRATIVE_WORDS = {
    "prologue": "prologue",
    "prolog": "prologue",
    "prelude": "prelude",
    "vorspiel": "prelude",
    "epilogue": "epilogue",
    "epilog": "epilogue",
    "épilogue": "epilogue",
    "finale": "finale",
    "chorus": "chorus",
    "interlude": "interlude",
    "postlude": "postlude",
    "induction": "prologue",
}

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORD_UNITS = (
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
).split()
_ORD_TENS = "twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth".split()

WORD_NUMBERS: dict[str, int] = {}
ORDINALS: dict[str, int] = {}
for i, w in enumerate(_UNITS):
    WORD_NUMBERS[w] = i
for i, w in enumerate(_ORD_UNITS):
    ORDINALS[w] = i
for t, (tw, to) in enumerate(zip(_TENS, _ORD_TENS), start=2):
    WORD_NUMBERS[tw] = 10 * t
    ORDINALS[to] = 10 * t
    for u in range(1, 10):
        for sep in ("-", " ", ""):
            WORD_NUMBERS[f"{tw}{sep}{_UNITS[u]}"] = 10 * t + u
            ORDINALS[f"{tw}{sep}{_ORD_UNITS[u]}"] = 10 * t + u
# German and French
for w, n in {
    "eins": 1,
    "ein": 1,
    "zwei": 2,
    "drei": 3,
    "vier": 4,
    "fünf": 5,
    "sechs": 6,
    "sieben": 7,
    "acht": 8,
    "neun": 9,
    "zehn": 10,
    "un": 1,
    "deux": 2,
    "trois": 3,
    "quatre": 4,
    "cinq": 5,
    "six": 6,
    "sept": 7,
    "huit": 8,
    "neuf": 9,
    "dix": 10,
}.items():
    WORD_NUMBERS.setdefault(w, n)
for w, n in {
    "erste": 1,
    "erstes": 1,
    "erster": 1,
    "zweite": 2,
    "zweites": 2,
    "zweiter": 2,
    "dritte": 3,
    "drittes": 3,
    "dritter": 3,
    "vierte": 4,
    "viertes": 4,
    "vierter": 4,
    "fünfte": 5,
    "fünftes": 5,
    "fünfter": 5,
    "sechste": 6,
    "sechstes": 6,
    "siebente": 7,
    "siebte": 7,
    "siebentes": 7,
    "achte": 8,
    "achtes": 8,
    "neunte": 9,
    "neuntes": 9,
    "zehnte": 10,
    "zehntes": 10,
    "premier": 1,
    "première": 1,
    "premiere": 1,
    "deuxième": 2,
    "deuxieme": 2,
    "second": 2,
    "seconde": 2,
    "troisième": 3,
    "troisieme": 3,
    "quatrième": 4,
    "quatrieme": 4,
    "cinquième": 5,
    "cinquieme": 5,
    "sixième": 6,
    "sixieme": 6,
    "septième": 7,
    "septieme": 7,
    "huitième": 8,
    "huitieme": 8,
    "neuvième": 9,
    "neuvieme": 9,
    "dixième": 10,
    "dixieme": 10,
    "last": -1,
    "final": -1,
    "letzte": -1,
    "letztes": -1,
    "dernier": -1,
    "dernière": -1,
}.items():
    ORDINALS.setdefault(w, n)

_ROMAN = re.compile(r"^(?=[ivxlcdm]+$)m{0,4}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})$", re.I)
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}


def roman_value(text: str) -> int | None:
    """``'XIV'`` -> 14; None when ``text`` is not a well-formed roman numeral."""
    t = text.strip().lower()
    if not t or not _ROMAN.match(t):
        return None
    total = 0
    for a, b in zip(t, t[1:] + " "):
        va, vb = _ROMAN_VALUES[a], _ROMAN_VALUES.get(b, 0)
        total += -va if va < vb else va
    return total or None


@dataclass(frozen=True)
class Heading:
    """A parsed heading line. ``number`` is None for unnumbered headings; -1 means "the last"."""

    label: str | None  # canonical label ('chapter', 'book', ...) or None for a bare number / a title
    number: int | None
    style: str  # 'arabic' | 'roman' | 'word' | 'ordinal' | 'bracket' | 'dashed' | 'none'
    title: str | None
    narrative: str | None = None  # 'prologue', 'epilogue'... for unnumbered narrative sections

    @property
    def numbered(self) -> bool:
        return self.number is not None

    @property
    def family(self) -> tuple[str | None, str]:
        """Headings of one family number one sequence: same label, same number style."""
        if self.label:  # CHAPTER I ... CHAPTER THE LAST, Chapter 1 ... Chapter Twelve: one sequence
            return self.label, "none" if self.number is None else "number"
        style = (
            self.style
            if self.style in ("bracket", "dashed", "roman")
            else ("none" if self.number is None else "number")
        )
        return self.label, style


def normalize(text: str) -> str:
    """Lowercased, accents kept, markup and punctuation at the ends removed, whitespace collapsed."""
    t = unicodedata.normalize("NFC", text).replace("*", "").replace("_", "").replace("\n", " ")
    t = re.sub(r"\s+", " ", t).strip()
    return t.lower()


_SEP = r"[\s.:;,—–\-]*"
_TITLE_STRIP = re.compile(r"^[\s.:;,—–\-]+|[\s.:;,—–\-]+$")
_NUMBER_TOKEN = r"(?:\d{1,4}|[ivxlcdm]{1,9}|[a-zà-ÿ]+(?:[- ][a-zà-ÿ]+)?)"


def _number_of(token: str) -> tuple[int | None, str]:
    t = token.strip().lower().rstrip(".")
    if t.isdigit():
        return int(t), "arabic"
    r = roman_value(t)
    if r is not None:
        return r, "roman"
    if t in WORD_NUMBERS:
        return WORD_NUMBERS[t], "word"
    if t in ORDINALS:
        return ORDINALS[t], "ordinal"
    return None, "none"


def _title(rest: str) -> str | None:
    t = _TITLE_STRIP.sub("", rest).strip()
    return t or None


def parse_heading(text: str) -> Heading | None:
    """The label, number and title of a heading line, or None when the line announces nothing numbered
    or labelled (a plain title is returned by :func:`titled`)."""
    raw = re.sub(r"\s+", " ", text.replace("*", "").replace("_", " ")).strip()
    # dashes separate words: "BOOK FIRST—A JUST MAN", "CHAPTER I—M. MYRIEL"
    raw = re.sub(r"(?<=\w)\s*([—–])\s*(?=\w)", r" \1 ", raw)
    low = raw.lower()
    if not low or len(low) > 400:
        return None
    # [ 1 ]   — I —   - 12 -
    m = re.match(r"^[\[(]\s*(\d{1,4}|[ivxlcdm]{1,9})\s*[\])]\.?(.*)$", low)
    if m and (n := _number_of(m.group(1))[0]) is not None:
        return Heading(None, n, "bracket", _title(raw[m.start(2) :]))
    m = re.match(r"^[—–\-]+\s*(\d{1,4}|[ivxlcdm]{1,9})\s*[—–\-]+(.*)$", low)
    if m and (n := _number_of(m.group(1))[0]) is not None:
        return Heading(None, n, "dashed", _title(raw[m.start(2) :]))
    words = low.split(" ")
    # LABEL NUMBER title / LABEL THE ORDINAL title
    first = words[0].rstrip(".:")
    if first in LABELS:
        label = LABELS[first]
        rest_words = words[1:]
        if rest_words[:1] == ["the"]:
            rest_words = rest_words[1:]
        for size in (2, 1):
            token = " ".join(rest_words[:size]).rstrip(".:,—–-")
            n, style = _number_of(token)
            if n is not None:
                consumed = len(" ".join(words[: len(words) - len(rest_words) + size]))
                return Heading(label, n, style, _title(raw[consumed:]))
        if len(words) == 1 or (NARRATIVE_WORDS.get(first) and len(words) <= 8):
            return Heading(label, None, "none", _title(raw[len(words[0]) :]), NARRATIVE_WORDS.get(first))
        return None
    # ORDINAL LABEL title: "FIRST ACT", "THE SECOND EPOCH", "Erstes Kapitel", "PREMIÈRE PARTIE"
    lead = 1 if words[0] in ("the", "das", "der", "die", "le", "la") and len(words) >= 3 else 0
    if len(words) >= 2 + lead and words[1 + lead].rstrip(".:,") in LABELS:
        n, style = _number_of(words[lead])
        if n is not None and style in ("ordinal", "word"):
            consumed = len(" ".join(words[: 2 + lead]))
            return Heading(LABELS[words[1 + lead].rstrip(".:,")], n, "ordinal", _title(raw[consumed:]))
    # a bare number, possibly with a title: "IV.", "12", "X. THE EPILOGUE."
    m = re.match(r"^(\d{1,4}|[ivxlcdm]{1,9})(?:\.|(?=\s)|$)(.*)$", low)
    if m:
        n, style = _number_of(m.group(1))
        rest = raw[m.start(2) :]
        if n is not None and (not rest.strip() or raw[len(m.group(1)) :][:1] in ".:" or rest[:2].strip() in "—–-:"):
            return Heading(None, n, style, _title(rest))
    lead = 1 if words[0] == "the" and len(words) >= 2 else 0
    word = words[lead].rstrip(".:")
    if word in NARRATIVE_WORDS and len(words) <= 8:
        consumed = len(" ".join(words[: lead + 1]))
        return Heading(LABELS.get(word), None, "none", _title(raw[consumed:]), NARRATIVE_WORDS[word])
    return None


def is_caps(text: str) -> bool:
    """Written in capitals (at least three letters, none lowercase)."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 3 and not any(c.islower() for c in letters)


#: words a title keeps in lower case
_SMALL_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "as",
        "at",
        "but",
        "by",
        "for",
        "from",
        "in",
        "into",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
    }
)


def is_titleish(text: str) -> bool:
    """A short line that could be a title: capitals, or most words capitalised, no sentence inside."""
    t = re.sub(r"[*_]", "", text).strip()
    words = t.split()
    if not words or len(words) > 14 or len(t) > 120:
        return False
    if is_caps(t):
        return True
    if re.search(r"[.!?]\s+[a-z]", t):
        return False
    small = _SMALL_WORDS | {"de", "la", "le", "der", "die", "das", "und"}
    caps = sum(1 for w in words if w[:1].isupper() or not w[:1].isalpha() or w.lower() in small)
    return caps / len(words) >= 0.8 and words[0][:1].isupper()


_ROMAN_WORD = re.compile(r"^[ivxlcdm]+$")
_OPENS_PHRASE = re.compile(r"[—–:;.!?(\[\"“‘']$")


def smart_title(text: str) -> str:
    """Title-case ALL-CAPS titles ('JACKSON’S ARM' -> 'Jackson’s Arm'); leave mixed case alone.

    Roman numerals stay upper case ('PART IV' -> 'Part IV'), and a word after a dash or colon opens a
    phrase ('BOOK FIRST—A JUST MAN' -> 'Book First—A Just Man')."""
    if not is_caps(text):
        return text
    out: list[str] = []
    for i, raw in enumerate(re.split(r"(\s+|[—–])", text)):
        if not raw or raw.isspace() or raw in "—–":
            out.append(raw)
            continue
        w = raw.lower()
        core = w.strip(".,:;!?()[]\"“”‘’'")
        before = "".join(out).rstrip()
        if _ROMAN_WORD.match(core) and (core != "i" or i > 0) and len(core) <= 7 and _roman_ok(core):
            out.append(raw.upper())
        elif before and not _OPENS_PHRASE.search(before) and core in _SMALL_WORDS:
            out.append(w)
        else:
            j = next((k for k, c in enumerate(w) if c.isalpha()), None)
            out.append(w if j is None else w[:j] + w[j].upper() + w[j + 1 :])
    return "".join(out)


def _roman_ok(word: str) -> bool:
    """A well-formed roman numeral, so that 'mix' or 'did' stay words."""
    return re.fullmatch(r"m{0,3}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})", word) is not None and word not in {
        "mix",
        "dim",
        "mid",
        "lid",
        "mill",
        "dill",
        "ill",
        "mi",
        "di",
        "li",
        "cc",
        "dc",
    }

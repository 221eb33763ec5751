"""Quality gates beyond the schema, shared by every LLM stage (prep stages 4-7 and generation's summaries).

A schema says an answer has the right fields of the right sizes; these gates say it is about the book:

* **plain prose** — prose fields hold no markup, code or JSON fragments (``<p>``, ``{}``, ``//``, a run of
  brackets) and are mostly words;
* **grounded names** — the names an answer gives as present or active occur in the text the model saw
  (the scene, or the previous summary);
* **world context** — every field has a minimum of words, and the context names some of the book's own
  entities (capitalised names that occur in the excerpts it was written from).

Each gate is a pure function returning the problem as one sentence fed back to the model (``None``: passed).
:func:`gate_chain` joins them with the token budget into one :data:`~novelcraft.llm.tasks.Gate`: the first
failing gate decides, a failed quality gate asks again with its message (``retry``), an overrun asks for a
shorter answer (``compress``); when the attempts run out, the last answer is kept and flagged, never kept
silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from .llm.answers import Gate, Verdict
from .names import NOT_NAMES, name_words

#: fragments that prose never holds: markup, code, JSON (what a weak model leaks into a field)
_MARKUP = re.compile(
    r"</?[a-zA-Z][^>]{0,40}>|[{}]|\[\s*[,*.\]\[]|\]\s*\[|//|```|\\[nt\"]|&[a-z]+;|\b(?:json|null|undefined)\b|\w\(\)"
)
_NAME_TOKEN = re.compile(r"[A-ZÀ-Þ][\w'’-]+")


def plain_prose_problem(fields: dict[str, str]) -> str | None:
    """The first prose field that holds markup or code, or is mostly not words (None: all are prose)."""
    for name, text in fields.items():
        if not text or not text.strip():
            continue
        if m := _MARKUP.search(text):
            return f"{name} holds markup or code ({m.group(0)!r}); write plain prose"
        chars = [c for c in text if not c.isspace()]
        letters = sum(c.isalpha() for c in chars)
        if chars and letters / len(chars) < 0.7:
            return f"{name} is mostly symbols, not words; write plain prose"
    return None


def names_missing(names: Iterable[str], texts: Sequence[str]) -> list[str]:
    """The names none of whose identifying words occurs in any of ``texts`` (whole words, any case)."""
    haystack = "\n".join(texts)
    missing = []
    for name in names:
        tokens = name_words(name)
        if not tokens:
            continue  # 'the narrator', 'two soldiers': a description, not a name to check
        if not any(re.search(rf"(?<!\w){re.escape(t)}(?!\w)", haystack, re.IGNORECASE) for t in tokens):
            missing.append(name.strip())
    return missing


def listed_names(text: str) -> list[str]:
    """Names listed in a prose field ('Avis Everhard (anxious), Ernest; the Bishop') - each item's name part."""
    items = re.split(r"[;,\n]|\band\b", re.sub(r"\([^)]*\)", " ", text))
    out = []
    for item in items:
        head = re.split(r"\s[-–—:]\s|:\s", item.strip(), maxsplit=1)[0]
        if head and name_words(head):
            out.append(" ".join(head.split()[:4]))
    return out


def grounded_problem(what: str, names: Iterable[str], texts: Sequence[str]) -> str | None:
    """The names of ``what`` that the model invented (they occur in none of ``texts``)."""
    missing = names_missing(names, texts)
    if not missing:
        return None
    shown = ", ".join(repr(m) for m in missing[:4])
    return f"{what} names {shown}, who never appear in the text; name only characters of the text"


def min_words_problem(fields: dict[str, str], min_words: int) -> str | None:
    """The first field with fewer than ``min_words`` words."""
    for name, text in fields.items():
        n = len(text.split())
        if n < min_words:
            return f"{name} has {n} words; write at least {min_words}"
    return None


def entities_problem(text: str, source: str, at_least: int) -> str | None:
    """Fewer than ``at_least`` of the source's own names (capitalised words that are not sentence starts)
    occur in ``text``: an answer about some other book."""
    own = {t for t in _NAME_TOKEN.findall(source) if t.lower() not in NOT_NAMES and not _only_sentence_start(t, source)}
    used = {t for t in _NAME_TOKEN.findall(text) if t in own}
    if len(own) >= at_least and len(used) < at_least:
        return (
            f"it names {len(used)} of the book's own people or places (at least {at_least} expected, e.g. "
            f"{', '.join(sorted(own)[:5])}); describe this book"
        )
    return None


def _only_sentence_start(token: str, source: str) -> bool:
    """``token`` occurs capitalised only where any word would be (sentence starts): not a name."""
    inside = re.search(rf"[\w,;] {re.escape(token)}(?!\w)", source)
    return inside is None


def prose_fields(value: BaseModel) -> dict[str, str]:
    """The string fields of an answer (lists of strings joined), by name."""
    out: dict[str, str] = {}
    for name, v in value:
        if isinstance(v, str):
            out[name] = v
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[name] = "; ".join(v)
    return out


Check = Callable[[Any], "str | None"]


def gate_chain(*checks: Check, budget: Gate | None = None) -> Gate:
    """One gate: each quality check in order (a problem -> ``retry`` with it), then the budget gate."""

    def gate(value: Any) -> Verdict:
        for check in checks:
            problem = check(value)
            if problem:
                return Verdict.retry(problem)
        return budget(value) if budget is not None else Verdict.ok()

    return gate


def keep_latest(old: Any, new: Any) -> bool:
    """``Task.keep_best`` for gated answers: when no answer passes, keep the last one (flagged)."""
    return True

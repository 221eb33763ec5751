"""The stop conditions of one scene answer and the retry notes (pure functions); the scene prompt itself is
the prompt contract's (:func:`novelcraft.chat_format.scene_prompt`)."""

from __future__ import annotations

import dataclasses
import re
import string
from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml

_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s|$)")
_LEADING_HEADING = re.compile(r"^(?:#{1,6}[ \t][^\n]*(?:\n+|$))+")
_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)

Problem = Literal["empty", "too_short", "cut_off", "repetition"]


def word_count(text: str) -> int:
    """Whitespace-separated words of ``text``."""
    return len(text.split())


def repetition_ratio(text: str, n: int = 4) -> float:
    """Share of word ``n``-grams that already occurred earlier in the text (0 for a text of unique n-grams)."""
    words = [w.lower() for w in _WORD.findall(text)]
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def trim_to_sentence_end(text: str) -> str:
    """``text`` up to its last sentence end (``.``, ``!``, ``?``, ``…``, with closing quotes); '' when none."""
    last = None
    for m in _SENTENCE_END.finditer(text):
        last = m
    return text[: last.end()].rstrip() if last else ""


def clean_scene_text(text: str) -> str:
    """Strip chat-template debris and surrounding whitespace from a scene answer."""
    # A model may write past its end-of-turn marker when the backend does not stop on it.
    text = text.split("<|im_end|>")[0].split("<|endoftext|>")[0].replace("<|im_start|>", "")
    # Training scenes that open a chapter start with its heading; chapters come from the outline here.
    return _LEADING_HEADING.sub("", text.strip(), count=1).strip()


@dataclasses.dataclass(frozen=True)
class SceneCheck:
    """Verdict on one scene answer. ``text`` is what would be kept (trimmed when the answer was cut off)."""

    ok: bool
    text: str
    words: int
    problem: Problem | None = None
    detail: str = ""
    trimmed: bool = False
    repetition: float = 0.0


def check_scene(
    text: str,
    finish_reason: str | None,
    *,
    min_words: int,
    max_repetition: float,
    trim_cut_off: bool = True,
) -> SceneCheck:
    """Stop conditions of a scene answer: empty, too short, runaway (repeating itself, or cut off at the
    token limit with no sentence end to trim back to). A cut-off answer is trimmed to its last sentence end
    when ``trim_cut_off`` and kept if it still has ``min_words``."""
    text = clean_scene_text(text)
    words = word_count(text)
    if not text:
        return SceneCheck(False, "", 0, "empty", "the answer is empty")
    rep = repetition_ratio(text)
    if rep > max_repetition:
        return SceneCheck(
            False,
            text,
            words,
            "repetition",
            f"{rep:.0%} of its 4-grams repeat (limit {max_repetition:.0%})",
            repetition=rep,
        )
    trimmed = False
    if finish_reason == "length":
        kept = trim_to_sentence_end(text) if trim_cut_off else ""
        if not kept or word_count(kept) < min_words:
            return SceneCheck(
                False,
                text,
                words,
                "cut_off",
                "cut off at the token limit with no sentence end to stop at",
                repetition=rep,
            )
        text, words, trimmed = kept, word_count(kept), kept != text
    if words < min_words:
        return SceneCheck(
            False, text, words, "too_short", f"{words} words, fewer than {min_words}", trimmed=trimmed, repetition=rep
        )
    return SceneCheck(True, text, words, trimmed=trimmed, repetition=rep)


def better(a: SceneCheck | None, b: SceneCheck) -> SceneCheck:
    """The answer to keep when every attempt failed: a non-repetitive one first, then the longest."""
    if a is None:
        return b
    key = lambda c: (c.problem != "empty", c.problem != "repetition", c.words)  # noqa: E731
    return b if key(b) > key(a) else a


@lru_cache(maxsize=1)
def _notes() -> dict[str, str]:
    text = (
        resources.files("novelcraft").joinpath("resources", "generate", "scene_notes.yaml").read_text(encoding="utf-8")
    )
    return {k: str(v) for k, v in yaml.safe_load(text).items()}


def retry_note(check: SceneCheck, *, min_words: int, target_words: int) -> str:
    """The note appended to the scene prompt after a rejected answer."""
    template = _notes()[check.problem or "too_short"]
    return string.Template(template).safe_substitute(min_words=min_words, words=check.words, target_words=target_words)

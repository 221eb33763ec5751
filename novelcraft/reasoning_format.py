"""The prompt contract of reasoning story continuation, shared by the data set, training, the assistant, bench
and export.

A model is trained on ``[user, assistant]`` (CRA format) or ``[system, user, assistant]`` (chat format)
records and later prompted with the same user turn; both must see exactly the same text. This module owns
that text, once:

* :func:`continuation_messages` — the turns of one record or prompt in a :data:`FormatName`; the texts come
  from the packaged ``novelcraft/resources/continuation/formats.yaml``;
* :func:`render_reasoned` — the assistant turn ``<reasoning>…</reasoning><answer>…</answer>``;
* :func:`parse_reasoned` — the reverse, lenient with what models write (a missing close tag, a doubled
  open tag where the close tag should be, no tags at all);
* :func:`tag_problems` — the strict check a data set must pass (every tag present once, in order, balanced);
* :class:`ContinuationRecord` — the record as JSONL holds it.
"""

from __future__ import annotations

import dataclasses
import re
import string
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from .chat_format import ChatMessage
from .strict import Record

#: record formats: ``cra`` is the published CRA-v1 data set's, ``chat`` novelcraft's chat-template one.
FormatName = Literal["cra", "chat"]
#: the tags of an assistant turn, in order.
REASONING_TAG = "reasoning"
ANSWER_TAG = "answer"
TAGS = (REASONING_TAG, ANSWER_TAG)
_TAG_RE = re.compile(r"</?\s*(reasoning|answer)\s*>", re.IGNORECASE)


@lru_cache(maxsize=1)
def format_texts() -> dict[str, dict[str, str]]:
    """The packaged prompt texts of every format (``resources/continuation/formats.yaml``)."""
    text = resources.files("novelcraft").joinpath("resources", "continuation", "formats.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {k: {kk: str(vv) for kk, vv in v.items()} for k, v in data.items() if isinstance(v, dict)}


def _fill(template: str, **values: str) -> str:
    return string.Template(template).substitute(values)


def system_prompt(fmt: FormatName) -> str | None:
    """The system turn of ``fmt`` (None for ``cra``, whose records have none)."""
    return format_texts()["chat"]["system"] if fmt == "chat" else None


def length_phrase(sentences: int | None = None, words: int | None = None) -> str | None:
    """``"5 sentences"`` / ``"120 words"`` (sentences win when both are given); None without either."""
    if sentences:
        return f"{sentences} sentence{'s' * (sentences != 1)}"
    if words:
        return f"{words} words"
    return None


def user_turn(fmt: FormatName, context: str, guidance: str | None = None, length: str | None = None) -> str:
    """The user turn of ``fmt`` for ``context`` (with the guidance sentence and, in the chat format, a
    length note such as ``length_phrase(5)``). The CRA texts are the published ones, byte for byte."""
    texts = format_texts()
    context = context.strip()
    if not context:
        raise ValueError("the context is empty")
    if guidance is not None and not guidance.strip():
        raise ValueError("the guidance is empty")
    if fmt == "cra":
        if guidance is not None:
            return _fill(texts["cra_guided"]["user"], context=context, guidance=guidance.strip())
        return _fill(texts["cra"]["user"], context=context)
    chat = texts["chat"]
    if guidance is not None:
        body = _fill(chat["user_guided"], context=context, guidance=guidance.strip())
    else:
        body = _fill(chat["user"], context=context)
    if length:
        body += "\n\n" + _fill(chat["length_note"], length=length)
    return body


def render_reasoned(fmt: FormatName, reasoning: str, answer: str) -> str:
    """The assistant turn: ``<reasoning>R</reasoning><answer>A</answer>`` (CRA), or each tag on its own
    line around the stripped texts (chat)."""
    r, a = reasoning.strip(), answer.strip()
    if not r or not a:
        raise ValueError("reasoning and answer must not be empty")
    if fmt == "cra":
        return f"<{REASONING_TAG}>{r}</{REASONING_TAG}><{ANSWER_TAG}>{a}</{ANSWER_TAG}>"
    return f"<{REASONING_TAG}>\n{r}\n</{REASONING_TAG}>\n<{ANSWER_TAG}>\n{a}\n</{ANSWER_TAG}>"


def continuation_messages(
    fmt: FormatName,
    context: str,
    *,
    guidance: str | None = None,
    length: str | None = None,
    reasoning: str | None = None,
    answer: str | None = None,
) -> list[ChatMessage]:
    """The turns of one record (with ``reasoning`` and ``answer``) or of one prompt (without them)."""
    messages = []
    system = system_prompt(fmt)
    if system:
        messages.append(ChatMessage(role="system", content=system))
    messages.append(ChatMessage(role="user", content=user_turn(fmt, context, guidance, length)))
    if reasoning is not None or answer is not None:
        if reasoning is None or answer is None:
            raise ValueError("a record needs both reasoning and answer")
        messages.append(ChatMessage(role="assistant", content=render_reasoned(fmt, reasoning, answer)))
    return messages


def prompt_parts(user: str) -> tuple[str, str | None]:
    """The context and the guidance (or None) of a user turn written by :func:`user_turn` in either format."""
    if "<context>\n" in user:
        context = user.split("<context>\n", 1)[1].split("\n</context>", 1)[0]
        guidance = user.split("<guidance>\n", 1)[1].split("\n</guidance>", 1)[0] if "<guidance>\n" in user else None
        return context, guidance
    if "### Context:\n" not in user:
        raise ValueError("not a continuation prompt: no ### Context: and no <context>")
    context = user.split("### Context:\n", 1)[1].removesuffix("\n")
    guidance = None
    if "### Guidance: " in user:
        guidance = user.split("### Guidance: ", 1)[1].split("\n\n### Context:", 1)[0]
    return context, guidance


# --------------------------------------------------------------------------- parsing


@dataclasses.dataclass(frozen=True)
class ParsedAnswer:
    """An assistant turn split into its reasoning and its answer; ``repairs`` says what was lenient."""

    reasoning: str
    answer: str
    repairs: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """Whether the text was well formed (nothing had to be repaired)."""
        return not self.repairs


def _tags(text: str) -> list[tuple[str, bool, int, int]]:
    """(name, is_close, start, end) of every reasoning/answer tag, in order."""
    return [(m.group(1).lower(), m.group(0).startswith("</"), m.start(), m.end()) for m in _TAG_RE.finditer(text)]


def parse_reasoned(text: str) -> ParsedAnswer:
    """Split a model's answer into reasoning and continuation, leniently.

    Accepted besides the well-formed ``<reasoning>R</reasoning><answer>A</answer>``: the reasoning closed by a
    second ``<reasoning>`` (as CRA-v1-7B sometimes writes), a missing ``</answer>`` (the answer runs to the
    end: a cut-off generation), a missing ``</reasoning>`` before ``<answer>``, a missing ``<answer>`` after
    ``</reasoning>`` (the rest is the answer), and text with no tags at all (all of it is the answer). Each
    repair is named in :attr:`ParsedAnswer.repairs`.
    """
    tags = _tags(text)
    repairs: list[str] = []
    r_open = next((t for t in tags if t[0] == REASONING_TAG and not t[1]), None)
    a_open = next((t for t in tags if t[0] == ANSWER_TAG and not t[1] and (r_open is None or t[2] > r_open[2])), None)
    if r_open is None and a_open is None:
        close = next((t for t in tags if t[0] == REASONING_TAG and t[1]), None)
        if close is None:
            return ParsedAnswer("", _strip_tags(text), ("no tags: the whole text is the answer",))
        # "...thoughts</reasoning> answer": the open tag was left out
        return ParsedAnswer(
            text[: close[2]].strip(), _strip_tags(text[close[3] :]), ("missing <reasoning>: text before </reasoning>",)
        )
    r_start = r_open[3] if r_open else 0
    if r_open is None:
        repairs.append("missing <reasoning>")
    limit = a_open[2] if a_open else len(text)
    r_close = next((t for t in tags if t[0] == REASONING_TAG and t[1] and r_start <= t[2] < limit), None)
    if r_close is None:
        doubled = next((t for t in tags if t[0] == REASONING_TAG and not t[1] and r_start <= t[2] < limit), None)
        if doubled is not None:
            r_close = doubled
            repairs.append("reasoning closed by a second <reasoning>")
    if a_open is None:
        if r_close is None:
            return ParsedAnswer(text[r_start:].strip(), "", (*repairs, "no answer"))
        repairs.append("missing <answer>: the rest is the answer")
        a_start = r_close[3]
    else:
        a_start = a_open[3]
        if r_close is None:
            repairs.append("missing </reasoning>")
    reasoning_end = r_close[2] if r_close else limit
    reasoning = _strip_tags(text[r_start:reasoning_end])
    a_close = next((t for t in tags if t[0] == ANSWER_TAG and t[1] and t[2] >= a_start), None)
    if a_close is None:
        repairs.append("missing </answer>")
        answer = text[a_start:]
    else:
        answer = text[a_start : a_close[2]]
        if text[a_close[3] :].strip():
            repairs.append("text after </answer> dropped")
    return ParsedAnswer(reasoning, _strip_tags(answer), tuple(repairs))


def _strip_tags(text: str) -> str:
    return _TAG_RE.sub("", text).strip()


def tag_problems(text: str) -> list[str]:
    """Why an assistant turn of a data set is not exactly ``<reasoning>R</reasoning>`` then
    ``<answer>A</answer>`` with non-empty R and A and no other text outside them (empty: well formed)."""
    tags = _tags(text)
    seq = [("/" if close else "") + name for name, close, _, _ in tags]
    if seq != ["reasoning", "/reasoning", "answer", "/answer"]:
        shown = " ".join(f"<{s}>" for s in seq) or "none"
        return [f"tags must be <reasoning> </reasoning> <answer> </answer> once each, in order; found {shown}"]
    problems = []
    (_, _, _, r0), (_, _, r1, r1e), (_, _, a0, a0e), (_, _, a1, a1e) = tags
    if text[:r0].replace("<reasoning>", "", 1).strip():
        problems.append("text before <reasoning>")
    if text[r1e:a0].strip():
        problems.append("text between </reasoning> and <answer>")
    if text[a1e:].strip():
        problems.append("text after </answer>")
    if not text[r0:r1].strip():
        problems.append("empty reasoning")
    if not text[a0e:a1].strip():
        problems.append("empty answer")
    return problems


def has_tag(text: str) -> bool:
    """Whether ``text`` contains a reasoning or answer tag (open or close)."""
    return _TAG_RE.search(text) is not None


# --------------------------------------------------------------------------- the record


class ContinuationRecord(Record):
    """One training record: ``[user, assistant]`` (CRA) or ``[system, user, assistant]`` (chat); the assistant
    turn holds the reasoning and the author's continuation in their tags."""

    messages: list[ChatMessage] = Field(..., min_length=2, max_length=3)

    @model_validator(mode="after")
    def _roles(self) -> ContinuationRecord:
        roles = [m.role for m in self.messages]
        if roles not in (["user", "assistant"], ["system", "user", "assistant"]):
            raise ValueError(f"roles must be user, assistant or system, user, assistant; got {', '.join(roles)}")
        return self

    @property
    def assistant(self) -> str:
        """The assistant turn."""
        return self.messages[-1].content

    @property
    def format(self) -> FormatName:
        """``chat`` with a system turn, else ``cra``."""
        return "chat" if len(self.messages) == 3 else "cra"

    def as_dict(self) -> dict[str, Any]:
        """The record as JSONL holds it."""
        return self.model_dump(mode="json")

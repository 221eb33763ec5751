"""The teacher's tasks: the author's reasoning (and the guided variant's guidance sentence) for each chunk.

Each is a structured :class:`~novelcraft.llm.tasks.Task` for :func:`~novelcraft.llm.tasks.run_tasks`: the
packaged prompt (``continuation_reasoning`` / ``continuation_guidance``) paired with its schema, and a gate
holding the quality rules (non-empty, within the recipe's word bounds, no tags, no copy of the
continuation, one sentence of guidance) — a rejected answer is fed back and asked again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from ..llm.tasks import Task, Verdict
from ..prompts import PromptTemplate
from ..reasoning_format import has_tag
from ..sentences import split_sentences
from ..strict import Record
from .chunk import Chunk
from .recipe import GuidanceConfig, TeacherConfig

#: the prompt templates of the teacher (``novelcraft/resources/prompts/<name>.yaml``).
REASONING_PROMPT = "continuation_reasoning"
GUIDANCE_PROMPT = "continuation_guidance"
#: n-gram size of the copy check.
COPY_NGRAM = 8
_WORD_RE = re.compile(r"[\w’']+", re.UNICODE)


class TeacherReasoning(Record):
    """The teacher's answer: the author's internal monologue before the continuation was written."""

    reasoning: str = Field(..., min_length=1, max_length=6000, description="step-by-step monologue, plain prose")


class TeacherGuidance(Record):
    """The guided variant's answer: one sentence on how the story continues."""

    guidance: str = Field(..., min_length=1, max_length=400, description="one sentence")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(text)]


def copy_share(text: str, source: str, n: int = COPY_NGRAM) -> float:
    """Share of ``source``'s word ``n``-grams that ``text`` repeats (0 when the source has none)."""
    src = _words(source)
    grams = {tuple(src[i : i + n]) for i in range(len(src) - n + 1)}
    if not grams:
        return 0.0
    words = _words(text)
    seen = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    return len(grams & seen) / len(grams)


def reasoning_verdict(value: TeacherReasoning, chunk: Chunk, config: TeacherConfig) -> Verdict:
    """The quality gate of one reasoning answer."""
    text = value.reasoning.strip()
    words = len(text.split())
    if not text:
        return Verdict.retry("the reasoning is empty")
    if has_tag(text):
        return Verdict.retry("the reasoning contains <reasoning> or <answer> tags; write plain prose")
    share = copy_share(text, chunk.target)
    if share > config.max_copy_share:
        return Verdict.retry(
            f"the reasoning copies {share:.0%} of the continuation's phrases (at most {config.max_copy_share:.0%}); "
            "plan it, do not quote it"
        )
    if words < config.min_words:
        return Verdict.retry(f"the reasoning has {words} words; write at least {config.min_words}")
    if words > config.max_words:
        return Verdict.compress(f"the reasoning has {words} words, the limit is {config.max_words}")
    return Verdict.ok()


def guidance_verdict(value: TeacherGuidance, config: GuidanceConfig, language: str = "en") -> Verdict:
    """The quality gate of one guidance sentence: one sentence, within the word limit, no tags."""
    text = value.guidance.strip()
    if not text:
        return Verdict.retry("the guidance is empty")
    if has_tag(text):
        return Verdict.retry("the guidance contains tags; write one plain sentence")
    n = len(split_sentences(text, language))
    if n > 1:
        return Verdict.retry(f"the guidance has {n} sentences; write exactly one")
    words = len(text.split())
    if words > config.max_words:
        return Verdict.compress(f"the guidance has {words} words, the limit is {config.max_words}")
    return Verdict.ok()


def _reasoning_check(value: TeacherReasoning, *, chunk: Chunk, config: TeacherConfig) -> Verdict:
    return reasoning_verdict(value, chunk, config)


def _typed_gate(model: type[BaseModel], check: Callable[[Any], Verdict]) -> Callable[[BaseModel], Verdict]:
    def gate(value: BaseModel) -> Verdict:
        assert isinstance(value, model)
        return check(value)

    return gate


def reasoning_tasks(
    chunks: Sequence[Chunk], guidance: dict[str, str], prompt: PromptTemplate, config: TeacherConfig
) -> list[Task]:
    """One reasoning task per chunk (``guidance`` maps chunk ids of the guided records to their sentence)."""
    tasks = []
    for chunk in chunks:
        g = guidance.get(chunk.chunk_id)
        block = prompt.render("guidance_block", guidance=g) + "\n" if g else ""
        values = {
            "context": chunk.context,
            "continuation": chunk.target,
            "guidance_block": block,
            "min_words": config.min_words,
            "max_words": config.max_words,
        }
        tasks.append(
            Task(
                key=f"{chunk.chunk_id}/reasoning",
                messages=prompt.messages(**values),
                schema=TeacherReasoning,
                max_tokens=config.max_tokens,
                gate=_typed_gate(TeacherReasoning, functools.partial(_reasoning_check, chunk=chunk, config=config)),
                feedback=prompt.feedback(**values),
                compress_attempts=config.compress_attempts,
            )
        )
    return tasks


def guidance_tasks(
    chunks: Sequence[Chunk], prompt: PromptTemplate, config: GuidanceConfig, language: str = "en"
) -> list[Task]:
    """One guidance task per chunk of the guided records."""
    tasks = []
    for chunk in chunks:
        values = {"context": chunk.context, "continuation": chunk.target, "max_words": config.max_words}
        tasks.append(
            Task(
                key=f"{chunk.chunk_id}/guidance",
                messages=prompt.messages(**values),
                schema=TeacherGuidance,
                max_tokens=config.max_tokens,
                gate=_typed_gate(TeacherGuidance, lambda v: guidance_verdict(v, config, language)),
                feedback=prompt.feedback(**values),
                compress_attempts=2,
            )
        )
    return tasks

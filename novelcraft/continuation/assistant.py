"""The writer's assistant: continue a story a few sentences at a time, reasoning first (``novelcraft continue``).

:func:`continue_story` builds the prompt a model was trained on (:mod:`novelcraft.reasoning_format`, CRA or
chat format) from the last sentences of the story, asks any engine (transformers, vLLM, or an
OpenAI-compatible server: ``ollama serve``, llama.cpp's ``llama-server``, vLLM), splits the answer leniently
into reasoning and continuation, and trims the continuation at a sentence end to the asked length.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ..errors import NovelcraftError
from ..llm.config import LLMConfig
from ..llm.types import LLMError, LLMRequest
from ..reasoning_format import FormatName, continuation_messages, length_phrase, parse_reasoned
from ..recipes import Recipe
from ..sentences import split_sentences
from ..strict import Strict
from .chunk import chapter_body

if TYPE_CHECKING:  # pragma: no cover
    from ..llm.types import Engine


class LengthConfig(Strict):
    """How long a continuation is: a target in sentences or words (at most one), trimmed at a sentence end."""

    sentences: int | None = Field(5, ge=1, description="target length in sentences")
    words: int | None = Field(None, ge=1, description="target length in words (instead of sentences)")
    trim: bool = Field(True, description="cut the continuation at the sentence end nearest the target")
    max_tokens: int = Field(1024, ge=16, description="answer limit: reasoning and continuation together")

    @model_validator(mode="after")
    def _one(self) -> LengthConfig:
        if self.sentences is not None and self.words is not None:
            raise ValueError("give length.sentences or length.words, not both")
        return self


class AssistantRecipe(Recipe):
    """Recipe of ``novelcraft continue``: the engine, the prompt format the model was trained on, the length."""

    kind: Literal["assistant"] = "assistant"
    output_dir: str = Field("runs/assistant", description="with log: true, calls go to OUTPUT_DIR/NAME/log.jsonl")
    llm: LLMConfig = LLMConfig()
    format: FormatName = Field("cra", description="the records' format the model was trained on")
    context_sentences: int = Field(80, ge=1, description="the story's last sentences shown to the model")
    length: LengthConfig = LengthConfig()
    length_note: bool = Field(True, description="chat format: ask for the length in the prompt, as in training")
    language: str = Field("en", description="pysbd language of the sentence splitter")
    log: bool = Field(False, description="append every prompt and answer to OUTPUT_DIR/NAME/log.jsonl")


@dataclasses.dataclass
class Continuation:
    """What :func:`continue_story` returns: the reasoning and the continuation apart, and how they were made."""

    reasoning: str
    continuation: str
    raw: str
    repairs: tuple[str, ...]
    trimmed: bool
    sentences: int
    words: int
    engine: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``--json``)."""
        return {**dataclasses.asdict(self), "repairs": list(self.repairs)}


def story_tail(text: str, sentences: int, language: str = "en") -> str:
    """The last ``sentences`` sentences of ``text`` (an exact slice, paragraph breaks kept)."""
    spans = split_sentences(text, language)
    if not spans:
        raise NovelcraftError("the story has no sentence to continue", step="continue")
    return text[spans[max(0, len(spans) - sentences)].start : spans[-1].end]


def trim_continuation(
    text: str, *, sentences: int | None, words: int | None, cut_off: bool, language: str = "en"
) -> tuple[str, bool]:
    """The continuation cut at a sentence end: the first ``sentences`` sentences, or the sentences that stay
    within ``words`` (at least one); a generation ``cut_off`` at its token limit loses its unfinished last
    sentence. Returns the text and whether anything was cut."""
    spans = split_sentences(text, language)
    if not spans:
        return text.strip(), False
    keep = len(spans)
    if cut_off and keep > 1 and not text[: spans[-1].end].rstrip().endswith((".", "!", "?", "”", '"', "’", "'", "…")):
        keep -= 1
    if sentences is not None:
        keep = min(keep, sentences)
    elif words is not None:
        n, total = 0, 0
        for s in spans[:keep]:
            w = len(text[s.start : s.end].split())
            if n and total + w > words:
                break
            total += w
            n += 1
        keep = max(1, n)
    out = text[spans[0].start : spans[keep - 1].end]
    return out, keep < len(spans)


def continue_story(
    text: str,
    recipe: AssistantRecipe,
    *,
    engine: Engine | None = None,
    guidance: str | None = None,
    sentences: int | None = None,
    words: int | None = None,
) -> Continuation:
    """Continue ``text`` with the recipe's engine (or ``engine``): reasoning and continuation returned apart.

    ``sentences`` / ``words`` override the recipe's target length; ``guidance`` is one sentence on where the
    story should go (the guided variant's prompt). The answer's tags are parsed leniently (see
    :func:`~novelcraft.reasoning_format.parse_reasoned`); an answer with no continuation at all is an error.

    >>> result = continue_story(open("story.txt").read(), load_recipe("recipes/continuation/assistant-ollama.yaml"))
    >>> print(result.reasoning, result.continuation, sep="\\n---\\n")
    """
    if sentences is not None and words is not None:
        raise NovelcraftError("give a target in sentences or in words, not both", step="continue")
    if sentences is None and words is None:
        sentences, words = recipe.length.sentences, recipe.length.words
    context = story_tail(text, recipe.context_sentences, recipe.language)
    note = length_phrase(sentences, words) if recipe.format == "chat" and recipe.length_note else None
    messages = [m.model_dump() for m in continuation_messages(recipe.format, context, guidance=guidance, length=note)]
    own = engine is None
    if engine is None:
        from ..llm.factory import make_engine

        engine = make_engine(recipe.llm)
    try:
        t0 = time.perf_counter()
        [resp] = engine.generate(
            [LLMRequest(key="continue", messages=tuple(messages), max_tokens=recipe.length.max_tokens)]
        )
        seconds = time.perf_counter() - t0
    finally:
        if own:
            engine.close()
    if resp.error is not None:
        raise LLMError(f"no answer from {engine.name}: {resp.error}", step="continue")
    parsed = parse_reasoned(resp.text)
    if not parsed.answer.strip():
        raise LLMError(
            f"the answer has no continuation ({'; '.join(parsed.repairs) or 'empty'}): {resp.text[:120]!r}",
            step="continue",
        )
    story = parsed.answer
    trimmed = False
    if recipe.length.trim:
        story, trimmed = trim_continuation(
            parsed.answer, sentences=sentences, words=words, cut_off=resp.truncated, language=recipe.language
        )
    result = Continuation(
        reasoning=parsed.reasoning,
        continuation=story,
        raw=resp.text,
        repairs=parsed.repairs,
        trimmed=trimmed,
        sentences=len(split_sentences(story, recipe.language)),
        words=len(story.split()),
        engine=str(engine.name),
        prompt_tokens=resp.prompt_tokens,
        completion_tokens=resp.completion_tokens,
        finish_reason=resp.finish_reason,
        seconds=round(seconds, 3),
    )
    if recipe.log:
        path = recipe.run_dir / "log.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"messages": messages, **result.as_dict()}, ensure_ascii=False) + "\n")
    return result


def read_story(
    source: str = "-",
    *,
    book: str | None = None,
    chapter: int = 1,
    sentence: int | None = None,
    stdin: IO[str] | None = None,
) -> str:
    """The story so far: a text file, ``-`` for stdin, or (``book``) a Book JSON chapter up to ``sentence``."""
    if book is not None:
        from ..bookfiles import load_book

        b = load_book(book)
        found = [c for c in b.chapters if c.index == chapter]
        if not found:
            raise NovelcraftError(f"no chapter {chapter} (the book has {len(b.chapters)})", path=book, step="continue")
        body, _ = chapter_body(found[0])
        if sentence is None:
            return body.strip()
        spans = split_sentences(body)
        if not 1 <= sentence <= len(spans):
            raise NovelcraftError(
                f"chapter {chapter} has {len(spans)} sentences, not {sentence}", path=book, step="continue"
            )
        return body[spans[0].start : spans[sentence - 1].end]  # from the first sentence: no heading gap
    if source == "-":
        text = (stdin or sys.stdin).read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NovelcraftError(
                f"cannot read the story ({getattr(exc, 'strerror', None) or exc})", path=source, step="continue"
            ) from None
    if not text.strip():
        raise NovelcraftError("the story is empty", path=source, step="continue")
    return text

"""The ``kind: prep`` recipe: books in; cleaning, blocks, segmentation and the LLM stages configured."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..executors.config import ExecutorConfig
from ..llm.config import LLMConfig
from ..recipes import Budgets, Recipe, TokenizerConfig
from ..strict import Strict
from .structure.matter import NEVER_TRAINED, PROSE_KINDS

#: reference kinds a recipe may turn into training scenes
TRAINABLE_REFERENCE_KINDS = PROSE_KINDS


class BookOverride(Strict):
    """Settings for one odd book (``clean.books``, keyed by file name or stem, wildcards allowed)."""

    encoding: str | None = Field(None, description="decode a plain-text file with this codec (e.g. cp1252)")
    heading_pattern: str | None = Field(
        None, description="regular expression: the paragraphs it matches are the chapter headings, and only they"
    )
    drop: list[str] = Field(
        default_factory=list, description="regular expressions of paragraphs to drop before cleaning"
    )
    chapters: int | None = Field(None, ge=1, description="the chapter count to expect: another count stops the book")

    @field_validator("heading_pattern", "drop")
    @classmethod
    def _compiles(cls, value: str | list[str] | None) -> str | list[str] | None:
        for pattern in [value] if isinstance(value, str) else (value or []):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
        return value


class CleanConfig(Strict):
    """How raw Markdown is cleaned: footnotes, the size of a chapter, extra reference headings."""

    keep_footnotes: bool = Field(True, description="collect footnote text into a 'footnotes' reference section")
    min_chapter_words: int = Field(
        40, ge=0, description="a section needs this many words to count as a chapter of its own"
    )
    extra_reference_titles: list[str] = Field(
        default_factory=list, description="extra heading words that mark reference material"
    )
    books: dict[str, BookOverride] = Field(
        default_factory=dict, description="per-book settings for odd books, keyed by file name or stem (wildcards)"
    )

    def override_for(self, source: str) -> BookOverride | None:
        """The settings of ``clean.books`` that name ``source``, if any."""
        name = Path(source).name
        for pattern, override in self.books.items():
            if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(Path(source).stem, pattern):
                return override
        return None


class SegmentationConfig(Strict):
    """How scenes are cut before the greedy merge.

    ``llm`` asks the LLM for atomic scene boundaries (stage 5); ``blocks`` treats every paragraph block as
    an atomic scene (deterministic, no LLM); ``none`` makes no scenes.
    """

    method: Literal["llm", "blocks", "none"] = "blocks"
    include_reference: bool = Field(True, description="also cut reference sections into (flagged) scenes")
    reference_kinds: list[str] = Field(
        default_factory=lambda: list(TRAINABLE_REFERENCE_KINDS),
        description="the reference kinds that become scenes with include_reference (contents, advertisements, "
        "licences, title pages, indexes and transcribers' notes never do)",
    )

    @field_validator("reference_kinds")
    @classmethod
    def _trainable(cls, value: list[str]) -> list[str]:
        never = sorted(set(value) & set(NEVER_TRAINED))
        if never:
            raise ValueError(
                f"{', '.join(never)}: never trained on (not prose of the book); the kinds a recipe can train on: "
                f"{', '.join(TRAINABLE_REFERENCE_KINDS)}"
            )
        unknown = sorted(set(value) - set(TRAINABLE_REFERENCE_KINDS))
        if unknown:
            raise ValueError(
                f"unknown reference kind(s) {', '.join(unknown)}; known: {', '.join(TRAINABLE_REFERENCE_KINDS)}"
            )
        return value

    window_tokens: int = Field(
        6000, ge=500, description="chapters longer than this are segmented in windows of whole blocks"
    )
    max_tokens: int | None = Field(
        None, ge=16, description="answer tokens of one segmentation call (default: the answer schema's bound)"
    )


class WorldContextStage(Strict):
    """Stage 4: the world context, from excerpts spread over the chapters."""

    enabled: bool = True
    input_tokens: int = Field(3000, ge=200, description="excerpt tokens shown to the LLM, spread over the chapters")
    max_tokens: int | None = Field(None, ge=64, description="answer tokens of one call (default: the schema's bound)")
    compress_attempts: int = Field(3, ge=0, le=10)
    min_field_words: int = Field(8, ge=0, description="quality gate: words every field must have at least")
    min_entities: int = Field(
        2, ge=0, description="quality gate: names of the book's people or places the context must mention"
    )


class SummaryStage(Strict):
    """Stage 6: a running summary after every scene."""

    enabled: bool = True
    mode: Literal["direct", "digest"] = Field(
        "direct",
        description="direct: each summary from the previous one and the scene text (a chain over scenes); "
        "digest: every scene's local fields and events in one batch, then the chain of global updates from those "
        "short digests (less prefill in the chain; see benchmarks/stage_quality.py for its memory quality)",
    )
    max_tokens: int | None = Field(None, ge=64, description="answer tokens of one call (default: the schema's bound)")
    compress_attempts: int = Field(3, ge=0, le=10, description="compress calls before the answer is kept and flagged")


class InstructionStage(Strict):
    """Stage 7: a scene instruction for every scene."""

    enabled: bool = True
    max_tokens: int | None = Field(None, ge=32, description="answer tokens of one call (default: the schema's bound)")
    compress_attempts: int = Field(2, ge=0, le=10)


class LLMStages(Strict):
    """Stages 4-7 (world context, semantic scenes, running summaries, instructions)."""

    world_context: WorldContextStage = WorldContextStage()
    summaries: SummaryStage = SummaryStage()
    instructions: InstructionStage = InstructionStage()
    attempts: int = Field(3, ge=1, le=10, description="answers per item when answers are invalid (feedback retries)")
    on_failure: Literal["error", "flag"] = Field(
        "error",
        description="an item still invalid after its attempts: stop with an error naming book, stage and item, "
        "or flag it and fall back (segmentation: size-based cuts; summary: carry the previous one; "
        "instruction: left empty)",
    )
    chunk_size: int = Field(
        64, ge=1, description="requests in flight at once (in rounds: per engine call); answers are saved as judged"
    )
    prompts_dir: str | None = Field(None, description="folder of prompt templates replacing the packaged ones")


class PrepRecipe(Recipe):
    """Recipe of ``novelcraft prep``: books in, Book JSON (chapters, reference, blocks, scenes) out."""

    kind: Literal["prep"] = "prep"
    books: list[str] = Field(..., min_length=1, description="EPUB/.txt/.md files, folders or glob patterns")
    output_dir: str = Field("runs", description="runs are written to OUTPUT_DIR/NAME")
    max_chapters: int | None = Field(
        None, ge=1, description="keep only the first N chapters of each book (pilot runs); reference is kept"
    )
    tokenizer: TokenizerConfig = TokenizerConfig()
    budgets: Budgets = Budgets()
    clean: CleanConfig = CleanConfig()
    segmentation: SegmentationConfig = SegmentationConfig()
    llm: LLMConfig | None = Field(None, description="the engine of stages 4-7; without it only stages 1-3 run")
    stages: LLMStages = LLMStages()
    executor: ExecutorConfig = Field(
        ExecutorConfig(), description="where stages 1-3 run, a book per unit (stages 4-7 batch all books here)"
    )

    @model_validator(mode="after")
    def _llm_needed(self) -> PrepRecipe:
        if self.segmentation.method == "llm" and self.llm is None:
            raise ValueError("segmentation.method 'llm' needs an llm section (backend, model)")
        return self

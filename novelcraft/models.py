"""Typed records that flow between stages, and the structured outputs the LLM stages produce.

Every stage is a function over these models. Their JSON Schemas are generated into ``schemas/``
(see :mod:`novelcraft.schemas`) so that users can validate data sets without importing Python.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .chat_format import ChatMessage, render_summary_section
from .strict import Record


def _word_count(text: str) -> int:
    return len(text.split())


def _bounded(max_words: int, max_chars: int, description: str) -> Any:
    """A string field with a hard character bound (for schema-constrained decoding) and a word budget.

    ``Any`` as :func:`pydantic.Field` itself returns: the value is assigned to ``str`` fields.
    """
    return Field(
        ...,
        min_length=1,
        max_length=max_chars,
        description=f"{description} (at most {max_words} words)",
        json_schema_extra={"x-max-words": max_words},
    )


def _budgets_on(info: ValidationInfo) -> bool:
    return not (isinstance(info.context, dict) and info.context.get("word_budgets") is False)


class _WordBudgeted(Record):
    """Checks the ``x-max-words`` budget declared on each string field."""

    @model_validator(mode="after")
    def _check_word_budgets(self, info: ValidationInfo) -> _WordBudgeted:
        # Over-budget LLM answers are parsed with context={"word_budgets": False} so they can be
        # compressed (or kept and flagged) instead of being thrown away.
        if not _budgets_on(info):
            return self
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            limit = extra.get("x-max-words")
            value = getattr(self, name)
            if not isinstance(limit, int):  # no budget on this field (``_bounded`` sets ints only)
                continue
            words = sum(_word_count(v) for v in value) if isinstance(value, list) else _word_count(value)
            if words > limit:
                raise ValueError(f"{name}: {words} words, budget is {limit}")
        return self


# --------------------------------------------------------------------------- book structure


class Block(Record):
    """A run of whole paragraphs (or one piece of an over-long paragraph) of at least the block minimum.

    ``joiner`` is the exact text that separated this block from the previous one in the chapter, so
    ``join_blocks`` reproduces the chapter byte for byte.
    """

    index: int = Field(..., ge=0)
    text: str = Field(..., min_length=1)
    tokens: int = Field(..., ge=0)
    joiner: str = Field("", description="text between the previous block and this one ('' for the first)")
    paragraphs: int = Field(1, ge=1, description="number of source paragraphs (or paragraph pieces) merged")
    split: bool = Field(False, description="true when the block is a sentence-boundary piece of one paragraph")


class Chapter(Record):
    """One narrative chapter, its normalized heading and its token-budgeted blocks."""

    index: int = Field(..., ge=1, description="1-based position among the narrative chapters")
    title: str | None = Field(None, description="chapter title without its number, if the book gives one")
    heading: str = Field(..., description="normalized heading, '# Chapter N' or '# Chapter N: Title'")
    source_heading: str = Field(..., description="the heading as the source book writes it")
    part: str | None = Field(None, description="the containers around it (volume, book, part...), joined by ' / '")
    containers: list[str] = Field(default_factory=list, description="container headings around it, outermost first")
    text: str = Field(..., min_length=1, description="cleaned Markdown, starting with the normalized heading")
    word_count: int = Field(..., ge=0)
    tokens: int = Field(..., ge=0)
    blocks: list[Block] = Field(default_factory=list)


#: reference kinds a recipe may turn into training scenes (``segmentation.reference_kinds``)
ProseKind = Literal[
    "foreword",
    "preface",
    "introduction",
    "afterword",
    "appendix",
    "epigraph",
    "dedication",
    "notes",
    "footnotes",
    "editor_note",
    "translator_note",
    "characters",
    "glossary",
    "other",
]

#: reference kinds that are never narrative nor training material
MatterKind = Literal[
    "title_page",
    "half_title",
    "contents",
    "illustrations",
    "advertisement",
    "colophon",
    "license",
    "gutenberg",
    "index",
    "transcriber_note",
    "end_marker",
]

#: reference kinds written by earlier versions (read, never written)
LegacyKind = Literal[
    "prologue_note",
    "front_matter",
    "etymology",
    "extracts",
]

ReferenceKind = Literal[ProseKind, MatterKind, LegacyKind]


class ReferenceSection(Record):
    """Non-narrative material kept apart from the chapters (foreword, glossary, footnotes, ...)."""

    index: int = Field(..., ge=1)
    kind: ReferenceKind
    title: str
    text: str = Field(..., min_length=1)
    word_count: int = Field(..., ge=0)
    tokens: int = Field(..., ge=0)
    blocks: list[Block] = Field(default_factory=list)


class Scene(Record):
    """A training scene: the unit the model learns to write from an instruction."""

    scene_id: int = Field(..., ge=1)
    chapter_index: int = Field(..., ge=0, description="0 for reference scenes, else the chapter's index")
    chapter_title: str | None = None
    instruction: str | None = Field(None, description="rendered scene instruction (stage 7)")
    text: str = Field(..., min_length=1)
    running_summary: str | None = Field(None, description="rendered running summary after this scene (stage 6)")
    tokens: int | None = Field(None, ge=0, description="exact token count of text, when known")
    is_reference: bool = Field(False, description="true for scenes cut from reference sections")
    block_start: int | None = Field(None, ge=0, description="first block index in the chapter")
    block_end: int | None = Field(None, ge=0, description="last block index in the chapter (inclusive)")
    flags: list[str] = Field(
        default_factory=list,
        description="'stage: reason' of this scene's flagged LLM items (its segmentation, the summary after it, "
        "its instruction)",
    )


class BookMeta(Record):
    """What a Book JSON says of its book: id, title, author, sizes and the rendered world context."""

    book_id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_]*$")
    title: str = Field(..., min_length=1)
    author: str = Field(..., min_length=1)
    word_count: int = Field(..., ge=0)
    total_chapters: int = Field(..., ge=0)
    total_scenes: int = Field(..., ge=0)
    world_context: str | None = Field(None, description="rendered world context (stage 4), <= 400 tokens")
    language: str | None = None
    source_id: str | None = Field(None, description="e.g. the Project Gutenberg ebook number")
    source_file: str | None = None
    source_sha256: str | None = None
    flags: list[str] = Field(default_factory=list, description="'stage: reason' of the book's flagged world context")


class Book(Record):
    """The Book JSON of the design: meta, chapters, reference sections and scenes."""

    meta: BookMeta
    chapters: list[Chapter] = Field(default_factory=list)
    reference: list[ReferenceSection] = Field(default_factory=list)
    scenes: list[Scene] = Field(default_factory=list)


# --------------------------------------------------------------------------- LLM outputs


class WorldContext(_WordBudgeted):
    """Stage 4 output: what a writer must know about the book's world, rendered to <= 400 tokens."""

    tone_style: str = _bounded(60, 480, "era/genre, atmosphere, prose voice, sensory anchors")
    world_rules: str = _bounded(60, 480, "technology or magic level, social order, key constraints")
    protagonist_conditions: str = _bounded(45, 360, "who the protagonist is and what drives them")
    factions: str = _bounded(60, 480, "powers in conflict, their aims and marks")
    locations: str = _bounded(50, 400, "key places and what they mean")
    narrative_engine: str = _bounded(50, 400, "central conflict, stakes, thematic core")

    def render(self) -> str:
        """The world context as prompts show it (``# Novel World Context`` and one line per field)."""
        return "\n".join(
            [
                "# Novel World Context",
                "",
                f"## TONE AND STYLE: {self.tone_style}",
                f"## WORLD RULES: {self.world_rules}",
                f"## PROTAGONIST CONDITIONS: {self.protagonist_conditions}",
                f"## FACTIONS: {self.factions}",
                f"## LOCATIONS: {self.locations}",
                f"## NARRATIVE ENGINE: {self.narrative_engine}",
            ]
        )


class RunningSummary(_WordBudgeted):
    """Stage 6 output: local momentum of the last scene plus the global state of the novel so far."""

    scene_end_state: str = _bounded(25, 200, "where and how the scene ends")
    emotional_beat: str = _bounded(15, 120, "the dominant emotion at the end of the scene")
    immediate_tension: str = _bounded(20, 160, "what pulls the reader into the next scene")
    global_events: str = _bounded(60, 480, "the events of the novel so far, compressed")
    unresolved_threads: str = _bounded(35, 280, "open questions and promises")
    world_state: str = _bounded(20, 160, "the state of the world now")
    active_characters: str = _bounded(15, 120, "characters in play and their conditions")
    global_shift: str = _bounded(20, 160, "how this scene changed the big picture")

    def render(self, progress_percent: int | None = None) -> str:
        """The summary as prompts show it; with ``progress_percent``, headed ``NOVEL PROGRESS: XX%``."""
        lines = [
            "# Running Summary",
            "",
            "## LOCAL MOMENTUM",
            f"- SCENE END STATE: {self.scene_end_state}",
            f"- EMOTIONAL BEAT: {self.emotional_beat}",
            f"- IMMEDIATE TENSION: {self.immediate_tension}",
            "## GLOBAL STATE",
            f"- GLOBAL EVENTS: {self.global_events}",
            f"- UNRESOLVED THREADS: {self.unresolved_threads}",
            f"- WORLD STATE: {self.world_state}",
            f"- ACTIVE CHARACTERS: {self.active_characters}",
            f"- GLOBAL SHIFT: {self.global_shift}",
        ]
        text = "\n".join(lines)
        return text if progress_percent is None else render_summary_section(text, progress_percent)


class SceneDigest(_WordBudgeted):
    """Digest mode, step 1 (all scenes in one batch): the local momentum of one scene and what happens in it."""

    scene_end_state: str = _bounded(25, 200, "where and how the scene ends")
    emotional_beat: str = _bounded(15, 120, "the dominant emotion at the end of the scene")
    immediate_tension: str = _bounded(20, 160, "what pulls the reader into the next scene")
    scene_events: str = _bounded(60, 480, "what happens in the scene and who takes part, by name")


class GlobalUpdate(_WordBudgeted):
    """Digest mode, step 2 (the serial chain): the global state after a scene, from the previous summary and
    the scene's digest."""

    global_events: str = _bounded(60, 480, "the events of the novel so far, compressed")
    unresolved_threads: str = _bounded(35, 280, "open questions and promises")
    world_state: str = _bounded(20, 160, "the state of the world now")
    active_characters: str = _bounded(15, 120, "characters in play and their conditions")
    global_shift: str = _bounded(20, 160, "how this scene changed the big picture")

    def with_digest(self, digest: SceneDigest) -> RunningSummary:
        """The running summary: the digest's local momentum and this global state."""
        local = {k: getattr(digest, k) for k in ("scene_end_state", "emotional_beat", "immediate_tension")}
        # a flagged part may be over its word budget: the parts were checked, the whole is not re-checked
        return RunningSummary.model_validate({**local, **self.model_dump()}, context={"word_budgets": False})


class Instruction(Record):
    """Stage 7 output: the directive that would have produced the scene (<= 80 words in all)."""

    scene_goal: str = Field(..., min_length=1, max_length=240, description="what the scene must achieve (<= 30 words)")
    characters_present: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        ..., max_length=8, description="names of the characters on stage"
    )
    emotional_beat: str = Field(..., min_length=1, max_length=120, description="the feeling the scene lands on")
    constraints: str = Field(..., max_length=240, description="style, pacing or continuity constraints")

    MAX_WORDS: ClassVar[int] = 80
    MAX_GOAL_WORDS: ClassVar[int] = 30

    @field_validator("scene_goal")
    @classmethod
    def _goal_words(cls, v: str, info: ValidationInfo) -> str:
        if _budgets_on(info) and _word_count(v) > cls.MAX_GOAL_WORDS:
            raise ValueError(f"scene_goal has {_word_count(v)} words, budget is {cls.MAX_GOAL_WORDS}")
        return v

    @model_validator(mode="after")
    def _total_words(self, info: ValidationInfo) -> Instruction:
        if not _budgets_on(info):
            return self
        total = (
            _word_count(self.scene_goal)
            + sum(_word_count(c) for c in self.characters_present)
            + _word_count(self.emotional_beat)
            + _word_count(self.constraints)
        )
        if total > self.MAX_WORDS:
            raise ValueError(f"instruction has {total} words, budget is {self.MAX_WORDS}")
        return self

    def render(self) -> str:
        """The instruction as prompts show it (``# Scene Instruction`` and one line per field)."""
        return "\n".join(
            [
                "# Scene Instruction",
                "",
                f"## SCENE GOAL: {self.scene_goal}",
                f"## CHARACTERS PRESENT: {'; '.join(self.characters_present)}",
                f"## EMOTIONAL BEAT: {self.emotional_beat}",
                f"## CONSTRAINTS: {self.constraints}",
            ]
        )


class SceneBoundaries(Record):
    """Stage 5 output: the block indices where atomic scenes start (0 first, strictly increasing)."""

    scene_starts: list[Annotated[int, Field(ge=0, le=9999)]] = Field(
        ..., min_length=1, max_length=200, description="index of the first block of each atomic scene"
    )


# --------------------------------------------------------------------------- training records


class TrainingRecord(Record):
    """One ChatML training example: system persona, user context + instruction, assistant scene."""

    messages: list[ChatMessage] = Field(..., min_length=3, max_length=3)

    @model_validator(mode="after")
    def _roles_in_order(self) -> TrainingRecord:
        roles = [m.role for m in self.messages]
        if roles != ["system", "user", "assistant"]:
            raise ValueError(f"roles must be system, user, assistant; got {', '.join(roles)}")
        return self


class RecordMeta(Record):
    """Sidecar line of a compiled record (``train.meta.jsonl``): where it comes from and its size."""

    record_id: str = Field(..., description="BOOK_ID/SCENE_ID")
    split: Literal["train", "validation"]
    book_id: str
    scene_id: int = Field(..., ge=1)
    chapter_index: int = Field(..., ge=0)
    chapter_title: str | None = None
    is_reference: bool = False
    position: int = Field(..., ge=1, description="1-based position in the book's narrative (or reference) sequence")
    sequence_length: int = Field(..., ge=1)
    progress_percent: int = Field(..., ge=0, le=100)
    tokens: int = Field(..., ge=0, description="whole record rendered with the chat template")
    scene_tokens: int = Field(..., ge=0, description="assistant turn")
    context_tokens: int = Field(..., ge=0, description="tokens - scene_tokens: system, user turn, template markup")
    world_context_tokens: int = Field(..., ge=0)
    summary_tokens: int = Field(..., ge=0, description="running-summary section incl. the progress line")
    instruction_tokens: int = Field(..., ge=0)
    flags: list[str] = Field(
        default_factory=list,
        description="'stage: reason' of the LLM items in this record that were flagged (world context, the "
        "previous scene's summary, the instruction, the segmentation)",
    )


# --------------------------------------------------------------------------- novels (generate -> bench)


NovelSource = Literal["generated", "human"]


class NovelScene(Record):
    """One scene of a novel, with what it was asked to do and the memory written after it."""

    index: int = Field(..., ge=1, description="1-based position in the novel")
    text: str = Field(..., min_length=1)
    chapter: int | None = Field(None, ge=0, description="chapter number, when known")
    chapter_title: str | None = None
    goal: str | None = Field(None, description="scene goal or rendered scene instruction")
    summary: str | None = Field(None, description="rendered running summary written after this scene")
    target_words: int | None = Field(None, ge=1, description="length the scene was asked to have, in words")


class Novel(Record):
    """A whole novel: ordered scenes plus where it came from."""

    title: str = Field(..., min_length=1)
    source: NovelSource = "generated"
    path: str | None = Field(None, description="file the novel was read from")
    scenes: list[NovelScene] = Field(..., min_length=1)

    @property
    def word_count(self) -> int:
        """Words of all scenes."""
        return sum(len(s.text.split()) for s in self.scenes)

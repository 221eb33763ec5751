"""The ``kind: continuation`` recipe: Book JSON chapters in, a reasoning-continuation training set out."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..bookfiles import DEFAULT_BOOK_FILES
from ..chat_format import DEFAULT_CHAT_TEMPLATE, ChatTemplateName
from ..datafiles import ExportConfig
from ..llm.config import LLMConfig
from ..reasoning_format import FormatName
from ..recipes import Recipe, TokenizerConfig
from ..splits import SplitConfig
from ..strict import Strict

#: Book JSON files looked for in folders (as compile): the final Book, else the latest numbered stage.


class ChunkConfig(Strict):
    """How chapters are cut into (context, continuation) pairs, always at sentence ends, never across chapters.

    ``unit`` says what ``context`` and ``target`` count: ``sentences``; ``tokens`` (exact counts with the
    recipe's tokenizer: whole sentences are added until the size is reached); or ``share``: chunks of
    ``chunk_sentences`` sentences whose context is the leading sentences within ``context_share`` of the
    chunk's characters (the published CRA code: 60 % / 40 %). A chapter's rest that holds at least
    ``min_fraction`` of a full chunk becomes a smaller chunk with the same proportions.
    """

    unit: Literal["sentences", "tokens", "share"] = "sentences"
    context: int = Field(80, ge=1, description="context size in the unit (sentences or tokens)")
    target: int = Field(20, ge=1, description="continuation size in the unit (sentences or tokens)")
    chunk_sentences: int = Field(100, ge=2, description="unit share: sentences per chunk")
    context_share: float = Field(0.6, gt=0.0, lt=1.0, description="unit share: the context's share of characters")
    min_fraction: float = Field(0.5, gt=0.0, le=1.0, description="smallest chunk at a chapter's end, of a full one")
    language: str = Field("en", description="pysbd language code of the sentence splitter")
    skip_first_line: bool = Field(True, description="leave the chapter's heading line out of the text")


class SelectConfig(Strict):
    """The record budget: at most ``max_records`` chunks (``max_per_book`` per book), drawn evenly and
    deterministically by a seeded hash of each chunk's id; ``null`` keeps every chunk."""

    max_records: int | None = Field(None, ge=1)
    max_per_book: int | None = Field(None, ge=1)
    seed: int = 0


class TeacherConfig(Strict):
    """The teacher that reconstructs the author's reasoning from (context, continuation): any engine."""

    llm: LLMConfig = LLMConfig()
    max_tokens: int = Field(1024, ge=16, description="answer limit of one teacher call")
    min_words: int = Field(40, ge=1, description="shorter reasoning is asked again")
    max_words: int = Field(400, ge=2, description="longer reasoning is asked to be shortened")
    max_copy_share: float = Field(
        0.3, ge=0.0, le=1.0, description="largest share of the continuation's word 8-grams the reasoning may repeat"
    )
    attempts: int = Field(3, ge=1, le=10, description="answers per item, feedback retries included")
    compress_attempts: int = Field(2, ge=0, le=5)
    batch_size: int = Field(16, ge=1, description="requests per engine call (answers are stored after each)")
    prompts_dir: str | None = Field(None, description="folder of replacement prompt templates")
    on_failure: Literal["drop", "error"] = Field("drop", description="an item with no valid reasoning")

    @model_validator(mode="after")
    def _bounds(self) -> TeacherConfig:
        if self.min_words >= self.max_words:
            raise ValueError(f"min_words ({self.min_words}) must be below max_words ({self.max_words})")
        return self


class GuidanceConfig(Strict):
    """The guided variant: a one-sentence direction of the continuation, written by a second engine."""

    enabled: bool = False
    share: float = Field(1.0, ge=0.0, le=1.0, description="share of the records that get guidance (seeded)")
    llm: LLMConfig | None = Field(None, description="the second engine (default: the teacher's)")
    max_tokens: int = Field(120, ge=8)
    max_words: int = Field(40, ge=3)
    attempts: int = Field(3, ge=1, le=10)


class RecordsConfig(Strict):
    """The records: format, chat template (for exact counts), budget, length note."""

    format: FormatName = Field("cra", description="cra: the published CRA-v1 records; chat: novelcraft's format")
    chat_template: ChatTemplateName = Field(
        DEFAULT_CHAT_TEMPLATE, description="how records are rendered and counted (use the train recipe's value)"
    )
    max_tokens: int = Field(8192, ge=256, description="a record over this many tokens is dropped")
    length_note: bool = Field(True, description="chat format: the user turn asks for the continuation's length")


class ContinuationRecipe(Recipe):
    """Recipe of ``novelcraft continuation``: chapters -> chunks -> teacher reasoning -> records."""

    kind: Literal["continuation"] = "continuation"
    books: list[str] = Field(..., min_length=1, description="Book JSON files, folders or glob patterns")
    book_files: list[str] = Field(default_factory=lambda: list(DEFAULT_BOOK_FILES), min_length=1)
    output_dir: str = Field("runs/continuation", description="the data set is written to OUTPUT_DIR/NAME")
    tokenizer: TokenizerConfig = TokenizerConfig()
    chunking: ChunkConfig = ChunkConfig()
    select: SelectConfig = SelectConfig()
    teacher: TeacherConfig = TeacherConfig()
    guidance: GuidanceConfig = GuidanceConfig()
    records: RecordsConfig = RecordsConfig()
    split: SplitConfig = Field(
        default_factory=SplitConfig,
        description="seeded split as compile's: by book, or by scene (here: by chunk); one book falls back to chunks",
    )
    export: ExportConfig = Field(default_factory=ExportConfig, description="jsonl and/or hf, and the data card")
    max_chapters: int | None = Field(None, ge=1, description="only the first N chapters of each book (pilots)")

    @property
    def guidance_llm(self) -> LLMConfig:
        """The engine that writes guidance sentences."""
        return self.guidance.llm or self.teacher.llm

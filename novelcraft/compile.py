"""Stage 8, ``novelcraft compile``: Book JSON files -> a ChatML training set.

Every scene becomes one record ``{"messages": [system, user, assistant]}``:

* **system** – the author persona (the packaged default
  ``novelcraft/resources/compile/system_prompt.txt``, or the recipe's inline text or file);
* **user** – three tagged sections, built by :func:`render_user_turn`::

      <world_context>
      # Novel World Context ...
      </world_context>
      <running_summary>
      NOVEL PROGRESS: 42%

      # Running Summary ...
      </running_summary>
      <scene_instruction>
      # Scene Instruction ...
      </scene_instruction>

* **assistant** – the scene text.

For scene *n* (1-based, narrative scenes of a book in order, *N* of them) the summary in the prompt
is the running summary written *after* scene *n-1* (scene 1 gets the recipe's opening summary) and
the progress is :func:`progress_percent` ``(n, N)`` = 100·(n-1)/N rounded half up. Reference scenes
(forewords, footnotes, ... flagged ``is_reference``) form a sequence of their own with the same rule,
and are dropped or kept by the recipe; the flag travels in the ``*.meta.jsonl`` sidecar, never in the
messages. Novel generation builds its prompts with the same functions (:func:`scene_messages`), so
training and inference see exactly the same prompt shape.

Records are measured with the target model's chat template (:func:`render_chatml`: plain ChatML,
the Qwen3-30B-A3B-Instruct-2507 template, no think blocks), counted exactly in one batch with the
injected token counter, and must fit ``budgets.record.max_tokens``.

Layout of a compiled data set (``OUTPUT_DIR/NAME``)::

    train.jsonl               {"messages": [...]} per line (Axolotl / MS-SWIFT chat format)
    validation.jsonl          same, held-out split (absent when the split is empty)
    train.meta.jsonl          one RecordMeta per line, aligned with train.jsonl (book, scene, flags, tokens)
    validation.meta.jsonl
    hf_dataset/               datasets.DatasetDict saved with save_to_disk (export format "hf")
    README.md                 data card: books, records, token statistics, budget histogram, recipe
    stats.json                the same numbers as JSON, dropped scenes, fingerprint, timings
    recipe.resolved.yaml      the recipe with every default filled in

Data files are deterministic: re-running a recipe on the same inputs writes byte-identical JSONL,
sidecars and data card (no timestamps inside them; timings live in ``stats.json`` only).
"""

from __future__ import annotations

import glob
import json
import logging
import math
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

from pydantic import BaseModel, Field, ValidationError, model_validator

from . import __version__
from .errors import NovelcraftError
from .io import atomic_write_json, atomic_write_jsonl, atomic_write_text, sha256_file, sha256_text
from .models import Book, ChatMessage, Record, Scene, TrainingRecord
from .recipes import RECIPE_VERSION, Budgets, Strict, TokenizerConfig, dump_recipe, write_resolved_recipe

if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from .tokens import TokenCounter

log = logging.getLogger(__name__)

#: tags of the user-turn sections, in order.
SECTION_WORLD_CONTEXT = "world_context"
SECTION_RUNNING_SUMMARY = "running_summary"
SECTION_INSTRUCTION = "scene_instruction"
USER_SECTIONS = (SECTION_WORLD_CONTEXT, SECTION_RUNNING_SUMMARY, SECTION_INSTRUCTION)

#: first line of the running-summary section; "NOVEL PROGRESS: 42%".
PROGRESS_PREFIX = "NOVEL PROGRESS: "

#: Book JSON files looked for in folders: the final Book of the LLM stages, else the latest numbered stage.
DEFAULT_BOOK_FILES = ("book.json", "[0-9][0-9]_*.json")
DEFAULT_OPENING_SUMMARY = "The novel opens with this scene; nothing has happened yet."
SYSTEM_PROMPT_RESOURCE = ("resources", "compile", "system_prompt.txt")

SPLITS = ("train", "validation")
HF_DIR = "hf_dataset"
DATA_CARD = "README.md"
#: width of the budget histogram's bins, in tokens.
HISTOGRAM_BIN = 512


# --------------------------------------------------------------------------- prompt shape (shared with generation)


def progress_percent(position: int, total: int) -> int:
    """NOVEL PROGRESS of the scene at 1-based ``position`` among ``total``: 100·(position-1)/total,
    rounded half up with integer arithmetic (so 12.5 -> 13 on every platform).

    >>> [progress_percent(n, 4) for n in range(1, 5)]
    [0, 25, 50, 75]
    """
    if total < 1 or not 1 <= position <= total:
        raise ValueError(f"position must be in 1..{total} (total >= 1), got {position}")
    return (200 * (position - 1) + total) // (2 * total)


def render_summary_section(summary: str, progress: int) -> str:
    """The running-summary section body: ``NOVEL PROGRESS: XX%``, a blank line, the summary.

    For a rendered :class:`~novelcraft.models.RunningSummary` ``rs`` this equals ``rs.render(progress)``.
    """
    if not 0 <= progress <= 100:
        raise ValueError(f"progress must be 0..100, got {progress}")
    return f"{PROGRESS_PREFIX}{progress}%\n\n{summary.strip()}"


def render_user_turn(world_context: str, summary: str, progress: int, instruction: str) -> str:
    """The user turn of a training record or a generation prompt (pure, deterministic).

    ``world_context`` is a rendered :class:`~novelcraft.models.WorldContext`, ``summary`` a rendered
    :class:`~novelcraft.models.RunningSummary` *without* its progress line (or the opening summary),
    ``progress`` the NOVEL PROGRESS percentage (:func:`progress_percent`) and ``instruction`` a
    rendered :class:`~novelcraft.models.Instruction`. Surrounding whitespace of each part is stripped.
    """
    parts = {
        SECTION_WORLD_CONTEXT: world_context.strip(),
        SECTION_RUNNING_SUMMARY: render_summary_section(summary, progress),
        SECTION_INSTRUCTION: instruction.strip(),
    }
    for name, body in parts.items():
        if not body:
            raise ValueError(f"{name} is empty")
    return "\n".join(f"<{name}>\n{body}\n</{name}>" for name, body in parts.items())


def scene_messages(
    system_prompt: str,
    world_context: str,
    summary: str,
    progress: int,
    instruction: str,
    scene_text: str | None = None,
) -> list[ChatMessage]:
    """``[system, user, assistant]`` of one scene; ``[system, user]`` when ``scene_text`` is None
    (a generation prompt: render it with ``render_chatml(..., add_generation_prompt=True)``)."""
    messages = [
        ChatMessage(role="system", content=system_prompt.strip()),
        ChatMessage(role="user", content=render_user_turn(world_context, summary, progress, instruction)),
    ]
    if scene_text is not None:
        messages.append(ChatMessage(role="assistant", content=scene_text.strip()))
    return messages


def render_chatml(
    messages: Iterable[ChatMessage | Mapping[str, str]], *, add_generation_prompt: bool = False
) -> str:
    """Messages as the target model sees them: the Qwen3-30B-A3B-Instruct-2507 chat template, i.e.
    plain ChatML ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` with no think blocks (the hybrid
    Qwen3 template would insert an empty ``<think>`` block). With ``add_generation_prompt`` the
    assistant header ``<|im_start|>assistant\\n`` is appended.
    """
    out = []
    for m in messages:
        role, content = (m.role, m.content) if isinstance(m, ChatMessage) else (m["role"], m["content"])
        out.append(f"<|im_start|>{role}\n{content}<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


def default_system_prompt() -> str:
    """The packaged author persona (``novelcraft/resources/compile/system_prompt.txt``)."""
    return resources.files("novelcraft").joinpath(*SYSTEM_PROMPT_RESOURCE).read_text(encoding="utf-8").strip()


# --------------------------------------------------------------------------- recipe


class SystemPromptConfig(Strict):
    """The author persona: inline ``text``, a ``file``, or (neither) the packaged default."""

    text: str | None = Field(None, description="inline system prompt")
    file: str | None = Field(None, description="path of a UTF-8 text file holding the system prompt")

    @model_validator(mode="after")
    def _one_source(self) -> "SystemPromptConfig":
        if self.text is not None and self.file is not None:
            raise ValueError("give system_prompt.text or system_prompt.file, not both")
        if self.text is not None and not self.text.strip():
            raise ValueError("system_prompt.text is empty")
        return self

    def resolve(self) -> str:
        """The prompt text (the file is read relative to the working directory)."""
        if self.text is not None:
            return self.text.strip()
        if self.file is not None:
            try:
                text = Path(self.file).expanduser().read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise NovelcraftError(
                    f"cannot read the system prompt file ({getattr(exc, 'strerror', None) or exc})",
                    path=self.file,
                    step="system_prompt",
                ) from None
            if not text:
                raise NovelcraftError("system prompt file is empty", path=self.file, step="system_prompt")
            return text
        return default_system_prompt()


class SplitConfig(Strict):
    """Seeded train/validation split.

    ``by: book`` holds out whole books (round(fraction x books), at least 1, never all);
    ``by: scene`` holds out records drawn from every book. With a single book, ``by: book`` cannot
    hold anything out: ``when_one_book: scene`` falls back to a scene split (logged and recorded in
    stats.json and the data card), ``error`` refuses.
    """

    by: Literal["book", "scene"] = "book"
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0
    when_one_book: Literal["scene", "error"] = "scene"


class ExportConfig(Strict):
    formats: list[Literal["jsonl", "hf"]] = Field(
        default_factory=lambda: ["jsonl"],
        min_length=1,
        description="jsonl: train.jsonl/validation.jsonl; hf: a datasets.DatasetDict saved with save_to_disk "
        "(needs the 'datasets' package)",
    )
    data_card: bool = Field(True, description="write README.md describing the data set")

    @model_validator(mode="after")
    def _unique(self) -> "ExportConfig":
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"export.formats has duplicates: {self.formats}")
        return self


class CompileRecipe(Strict):
    """Recipe of ``novelcraft compile``: Book JSON files in, a ChatML training set out."""

    version: Literal[1] = RECIPE_VERSION
    kind: Literal["compile"] = "compile"
    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    books: list[str] = Field(
        ..., min_length=1, description="Book JSON files, folders (searched for book_files) or glob patterns"
    )
    book_files: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BOOK_FILES),
        min_length=1,
        description="in a folder, file patterns in priority order: per book directory, the first pattern that "
        "matches a Book JSON (meta + scenes) wins, and among its matches the last in name order (the latest stage)",
    )
    output_dir: str = Field("runs/datasets", description="the data set is written to OUTPUT_DIR/NAME")
    tokenizer: TokenizerConfig = TokenizerConfig()
    budgets: Budgets = Budgets()
    system_prompt: SystemPromptConfig = SystemPromptConfig()
    opening_summary: str = Field(
        DEFAULT_OPENING_SUMMARY,
        min_length=1,
        description="running summary in the prompt of each sequence's first scene",
    )
    reference_scenes: Literal["drop", "keep"] = Field(
        "drop", description="scenes cut from reference sections (foreword, footnotes, ...)"
    )
    on_missing: Literal["fail", "drop"] = Field(
        "fail", description="a scene lacking its instruction, the previous running summary or the world context"
    )
    on_over_budget: Literal["drop", "fail"] = Field("drop", description="a record over budgets.record.max_tokens")
    split: SplitConfig = SplitConfig()
    export: ExportConfig = ExportConfig()

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


# --------------------------------------------------------------------------- results


class TokenSummary(Record):
    """min / median / p95 (nearest rank) / max / mean / total of a list of token counts."""

    count: int
    min: int = 0
    median: float = 0.0
    p95: int = 0
    max: int = 0
    mean: float = 0.0
    total: int = 0

    @classmethod
    def of(cls, values: Sequence[int]) -> "TokenSummary":
        if not values:
            return cls(count=0)
        s = sorted(values)
        p95 = s[max(0, math.ceil(0.95 * len(s)) - 1)]
        return cls(
            count=len(s),
            min=s[0],
            median=float(statistics.median(s)),
            p95=p95,
            max=s[-1],
            mean=round(sum(s) / len(s), 1),
            total=sum(s),
        )


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


class CompiledRecord(BaseModel):
    record: TrainingRecord
    meta: RecordMeta


class DroppedScene(Record):
    book_id: str
    scene_id: int
    is_reference: bool
    reason: Literal["missing", "over_budget"]
    detail: str


class BookSummary(Record):
    book_id: str
    title: str
    author: str
    source: str | None = None
    narrative_scenes: int
    reference_scenes: int
    train: int = 0
    validation: int = 0
    dropped: int = 0


class SplitSummary(Record):
    by: Literal["book", "scene"]
    effective_by: Literal["book", "scene"]
    validation_fraction: float
    seed: int
    validation_books: list[str] = Field(default_factory=list)
    note: str | None = None


class CompileStats(Record):
    """Everything the data card shows, as data (written to stats.json)."""

    name: str
    tokenizer: str
    chat_template: str = "chatml (Qwen3-30B-A3B-Instruct-2507, no think blocks)"
    max_tokens: int
    books: list[BookSummary]
    records: dict[str, int]
    dropped: list[DroppedScene] = Field(default_factory=list)
    reference_scenes_dropped: int = 0
    split: SplitSummary
    tokens: dict[str, TokenSummary] = Field(default_factory=dict)
    narrative_context_ratio: float | None = Field(None, description="sum of scene tokens / sum of context tokens")
    histogram: list[tuple[str, int]] = Field(default_factory=list, description="(token range, kept records)")
    over_section_budget: dict[str, int] = Field(default_factory=dict, description="records over a section budget")
    system_prompt_sha256: str


class CompileResult(BaseModel):
    """Compiled records per split plus statistics; ``run_dir`` is set by :func:`run_compile`."""

    train: list[CompiledRecord]
    validation: list[CompiledRecord]
    stats: CompileStats
    run_dir: str | None = None
    skipped: bool = False
    seconds: float = 0.0
    files: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        s = self.stats
        tok = s.tokens.get("record")
        lines = [
            f"data set {self.run_dir or s.name}: {s.records['train']} train + {s.records['validation']} validation "
            f"records from {len(s.books)} book{'s' * (len(s.books) != 1)}"
            + (" (unchanged, skipped)" if self.skipped else f" in {self.seconds:.1f}s")
            + f" (tokenizer {s.tokenizer})",
        ]
        if tok and tok.count:
            ratio = f", narrative:context {s.narrative_context_ratio:.2f}:1" if s.narrative_context_ratio else ""
            lines.append(
                f"  tokens per record: min {tok.min}, median {tok.median:g}, p95 {tok.p95}, max {tok.max} "
                f"(budget {s.max_tokens}){ratio}"
            )
        if s.dropped or s.reference_scenes_dropped:
            by_reason: dict[str, int] = {}
            for d in s.dropped:
                by_reason[d.reason] = by_reason.get(d.reason, 0) + 1
            parts = [f"{n} {r.replace('_', ' ')}" for r, n in sorted(by_reason.items())]
            if s.reference_scenes_dropped:
                parts.append(f"{s.reference_scenes_dropped} reference (recipe)")
            lines.append(f"  dropped scenes: {', '.join(parts)}")
        if s.split.note:
            lines.append(f"  split: {s.split.note}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- compiling


@dataclass(slots=True)
class _Draft:
    """A record before counting: its messages and the parts whose tokens are reported."""

    book: Book
    scene: Scene
    position: int
    length: int
    messages: list[ChatMessage]
    progress: int
    summary_section: str


def _present(text: str | None) -> bool:
    return bool(text and text.strip())


def _drafts_for_book(
    book: Book, recipe: CompileRecipe, system_prompt: str
) -> tuple[list[_Draft], list[DroppedScene], int]:
    """Drafts of one book (narrative sequence, then reference sequence), scenes lacking inputs, and the
    number of reference scenes left out by the recipe."""
    narrative = [s for s in book.scenes if not s.is_reference]
    reference = [s for s in book.scenes if s.is_reference]
    sequences = [narrative] + ([reference] if recipe.reference_scenes == "keep" else [])
    world_context = book.meta.world_context
    drafts: list[_Draft] = []
    missing: list[DroppedScene] = []
    for seq in sequences:
        for pos, scene in enumerate(seq, start=1):
            prev = seq[pos - 2] if pos > 1 else None
            lacks = []
            if not _present(world_context):
                lacks.append("meta.world_context")
            if not _present(scene.instruction):
                lacks.append("instruction")
            if prev is not None and not _present(prev.running_summary):
                lacks.append(f"running_summary of scene {prev.scene_id} (the previous scene)")
            if lacks:
                missing.append(
                    DroppedScene(
                        book_id=book.meta.book_id,
                        scene_id=scene.scene_id,
                        is_reference=scene.is_reference,
                        reason="missing",
                        detail="missing " + ", ".join(lacks),
                    )
                )
                continue
            summary = prev.running_summary if prev is not None else recipe.opening_summary
            progress = progress_percent(pos, len(seq))
            assert world_context is not None and scene.instruction is not None and summary is not None
            messages = scene_messages(system_prompt, world_context, summary, progress, scene.instruction, scene.text)
            drafts.append(
                _Draft(book, scene, pos, len(seq), messages, progress, render_summary_section(summary, progress))
            )
    return drafts, missing, 0 if recipe.reference_scenes == "keep" else len(reference)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def split_records(
    keys: Sequence[str],
    book_ids: Sequence[str],
    config: SplitConfig,
) -> tuple[list[bool], SplitSummary]:
    """Which records go to validation (True), deterministically from ``config.seed``.

    ``keys`` are the records' unique ids (their order is the output order), ``book_ids`` the book of
    each record. Pure: the same inputs always give the same split.
    """
    if len(keys) != len(book_ids):
        raise ValueError("keys and book_ids differ in length")
    books = sorted(set(book_ids))
    summary = SplitSummary(
        by=config.by, effective_by=config.by, validation_fraction=config.validation_fraction, seed=config.seed
    )
    n = len(keys)
    if config.validation_fraction == 0 or n == 0:
        return [False] * n, summary
    by = config.by
    if by == "book" and len(books) < 2:
        if config.when_one_book == "error":
            raise NovelcraftError(
                f"split.by is 'book' but only {len(books)} book has records; add books, set split.by=scene, "
                "split.validation_fraction=0 or split.when_one_book=scene",
                step="split",
            )
        by = "scene"
        summary.effective_by = "scene"
        summary.note = "only one book: split.by=book fell back to a scene split (split.when_one_book=scene)"
        log.warning("split: %s", summary.note)
    rng = random.Random(config.seed)
    if by == "book":
        k = min(max(1, _round_half_up(config.validation_fraction * len(books))), len(books) - 1)
        order = list(books)
        rng.shuffle(order)
        held = set(order[:k])
        summary.validation_books = sorted(held)
        return [b in held for b in book_ids], summary
    if n < 2:
        summary.note = (summary.note + "; " if summary.note else "") + "a single record: nothing held out"
        return [False] * n, summary
    k = min(max(1, _round_half_up(config.validation_fraction * n)), n - 1)
    # sort the keys first so the draw does not depend on the order books were listed in
    ranked = sorted(range(n), key=lambda i: keys[i])
    held_idx = set(rng.sample(ranked, k))
    return [i in held_idx for i in range(n)], summary


def _histogram(totals: Sequence[int], max_tokens: int, over: int) -> list[tuple[str, int]]:
    """Kept records per token range ``(lo, hi]`` of width :data:`HISTOGRAM_BIN`, then the over-budget count."""
    edges = list(range(0, max_tokens, HISTOGRAM_BIN)) + [max_tokens]
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        n = sum(1 for t in totals if lo < t <= hi or (lo == 0 and t == 0))
        rows.append((f"{lo + 1 if lo else 0}–{hi}", n))
    rows.append((f"> {max_tokens} (dropped)", over))
    return rows


def compile_books(
    books: Sequence[Book],
    recipe: CompileRecipe,
    counter: "TokenCounter",
    *,
    sources: Sequence[str] | None = None,
    system_prompt: str | None = None,
) -> CompileResult:
    """Compile Books into train/validation records (pure apart from logging; no files).

    ``sources`` names each book's file for messages and the data card; ``system_prompt`` overrides
    the recipe's (default: ``recipe.system_prompt.resolve()``). Every record is counted exactly with
    ``counter`` in one batch. Raises :class:`~novelcraft.errors.NovelcraftError` naming book and scene
    when inputs are missing (``on_missing: fail``) or records exceed the budget (``on_over_budget: fail``).
    """
    if sources is not None and len(sources) != len(books):
        raise ValueError("sources must name every book")
    system_prompt = (system_prompt if system_prompt is not None else recipe.system_prompt.resolve()).strip()
    seen: dict[str, int] = {}
    for i, book in enumerate(books):
        bid = book.meta.book_id
        if bid in seen:
            where = f" ({sources[seen[bid]]} and {sources[i]})" if sources else ""
            raise NovelcraftError(f"two books have book_id '{bid}'{where}", step="compile")
        seen[bid] = i

    drafts: list[_Draft] = []
    dropped: list[DroppedScene] = []
    ref_dropped = 0
    for book in books:
        d, missing, r = _drafts_for_book(book, recipe, system_prompt)
        drafts += d
        dropped += missing
        ref_dropped += r
    if dropped and recipe.on_missing == "fail":
        first = dropped[0]
        src = sources[seen[first.book_id]] if sources else None
        more = f" (and {len(dropped) - 1} more scene{'s' * (len(dropped) != 2)})" if len(dropped) > 1 else ""
        raise NovelcraftError(
            f"book {first.book_id}: scene {first.scene_id}: {first.detail}{more}; run the LLM stages that fill "
            "them, or set on_missing=drop",
            path=src,
            step="compile",
        )
    for d in dropped:
        log.warning("book %s: scene %s: dropped, %s", d.book_id, d.scene_id, d.detail)

    # one batch: system once, world context once per book, then per record its ChatML, scene,
    # summary section and instruction
    books_used = [b for b in books if any(d.book is b for d in drafts)]
    texts = [system_prompt] + [b.meta.world_context or "" for b in books_used]
    for d in drafts:
        texts += [render_chatml(d.messages), d.messages[2].content, d.summary_section, d.scene.instruction or ""]
    counts = counter.count_batch(texts)
    system_tokens = counts[0]
    wc_tokens = {b.meta.book_id: n for b, n in zip(books_used, counts[1 : 1 + len(books_used)])}
    per_record = counts[1 + len(books_used) :]

    max_tokens = recipe.budgets.record.max_tokens
    kept: list[tuple[_Draft, tuple[int, int, int, int]]] = []
    over_details: list[DroppedScene] = []
    for i, d in enumerate(drafts):
        total, scene_n, summary_n, instr_n = per_record[4 * i : 4 * i + 4]
        if total <= max_tokens:
            kept.append((d, (total, scene_n, summary_n, instr_n)))
            continue
        over_details.append(
            DroppedScene(
                book_id=d.book.meta.book_id,
                scene_id=d.scene.scene_id,
                is_reference=d.scene.is_reference,
                reason="over_budget",
                detail=f"{total} tokens as ChatML, budget is {max_tokens} (budgets.record.max_tokens): "
                f"scene {scene_n}, context {total - scene_n}",
            )
        )
    if over_details and recipe.on_over_budget == "fail":
        first = over_details[0]
        more = f" (and {len(over_details) - 1} more)" if len(over_details) > 1 else ""
        raise NovelcraftError(
            f"book {first.book_id}: scene {first.scene_id}: {first.detail}{more}; set on_over_budget=drop to leave "
            "them out, or cut smaller scenes",
            path=sources[seen[first.book_id]] if sources else None,
            step="budget",
        )
    for d in over_details:
        log.warning("book %s: scene %s: dropped, %s", d.book_id, d.scene_id, d.detail)
    dropped += over_details

    keys = [f"{d.book.meta.book_id}/{d.scene.scene_id}" for d, _ in kept]
    is_val, split_summary = split_records(keys, [d.book.meta.book_id for d, _ in kept], recipe.split)

    out: dict[str, list[CompiledRecord]] = {"train": [], "validation": []}
    rb = recipe.budgets.record
    section_over = {"system": 0, "world_context": 0, "running_summary": 0, "instruction": 0}
    for (d, (total, scene_n, summary_n, instr_n)), key, val in zip(kept, keys, is_val):
        split = "validation" if val else "train"
        wc_n = wc_tokens[d.book.meta.book_id]
        meta = RecordMeta(
            record_id=key,
            split=split,
            book_id=d.book.meta.book_id,
            scene_id=d.scene.scene_id,
            chapter_index=d.scene.chapter_index,
            chapter_title=d.scene.chapter_title,
            is_reference=d.scene.is_reference,
            position=d.position,
            sequence_length=d.length,
            progress_percent=d.progress,
            tokens=total,
            scene_tokens=scene_n,
            context_tokens=total - scene_n,
            world_context_tokens=wc_n,
            summary_tokens=summary_n,
            instruction_tokens=instr_n,
        )
        section_over["system"] += system_tokens > rb.system
        section_over["world_context"] += wc_n > rb.world_context
        section_over["running_summary"] += summary_n > rb.running_summary
        section_over["instruction"] += instr_n > rb.instruction
        out[split].append(CompiledRecord(record=TrainingRecord(messages=d.messages), meta=meta))

    stats = _stats(books, sources, recipe, counter, out, dropped, ref_dropped, split_summary, system_tokens,
                   section_over, system_prompt)
    return CompileResult(train=out["train"], validation=out["validation"], stats=stats)


def _stats(
    books: Sequence[Book],
    sources: Sequence[str] | None,
    recipe: CompileRecipe,
    counter: "TokenCounter",
    out: Mapping[str, list[CompiledRecord]],
    dropped: list[DroppedScene],
    ref_dropped: int,
    split_summary: SplitSummary,
    system_tokens: int,
    section_over: dict[str, int],
    system_prompt: str,
) -> CompileStats:
    metas = [r.meta for split in SPLITS for r in out[split]]
    per_book = []
    for i, book in enumerate(books):
        bid = book.meta.book_id
        per_book.append(
            BookSummary(
                book_id=bid,
                title=book.meta.title,
                author=book.meta.author,
                source=sources[i] if sources else None,
                narrative_scenes=sum(1 for s in book.scenes if not s.is_reference),
                reference_scenes=sum(1 for s in book.scenes if s.is_reference),
                train=sum(1 for r in out["train"] if r.meta.book_id == bid),
                validation=sum(1 for r in out["validation"] if r.meta.book_id == bid),
                dropped=sum(1 for d in dropped if d.book_id == bid),
            )
        )
    max_tokens = recipe.budgets.record.max_tokens
    tokens = {
        "record": TokenSummary.of([m.tokens for m in metas]),
        "scene": TokenSummary.of([m.scene_tokens for m in metas]),
        "context": TokenSummary.of([m.context_tokens for m in metas]),
        "system": TokenSummary.of([system_tokens] * len(metas)),
        "world_context": TokenSummary.of([m.world_context_tokens for m in metas]),
        "running_summary": TokenSummary.of([m.summary_tokens for m in metas]),
        "instruction": TokenSummary.of([m.instruction_tokens for m in metas]),
    }
    scene_sum, context_sum = tokens["scene"].total, tokens["context"].total
    over = sum(1 for d in dropped if d.reason == "over_budget")
    return CompileStats(
        name=recipe.name,
        tokenizer=counter.name,
        max_tokens=max_tokens,
        books=per_book,
        records={split: len(out[split]) for split in SPLITS},
        dropped=dropped,
        reference_scenes_dropped=ref_dropped,
        split=split_summary,
        tokens=tokens,
        narrative_context_ratio=round(scene_sum / context_sum, 3) if context_sum else None,
        histogram=_histogram([m.tokens for m in metas], max_tokens, over),
        over_section_budget={k: v for k, v in section_over.items() if v},
        system_prompt_sha256=sha256_text(system_prompt),
    )


# --------------------------------------------------------------------------- statistics of any data set


class DatasetStats(Record):
    """Token statistics of a ChatML data set (ours or a foreign one), counted exactly."""

    records: int
    tokens: TokenSummary
    scene: TokenSummary
    context: TokenSummary
    narrative_context_ratio: float | None


def dataset_stats(records: Sequence[TrainingRecord | Mapping[str, Any]], counter: "TokenCounter") -> DatasetStats:
    """Records, tokens per record (ChatML), scene (assistant) and context (the rest) token statistics and
    the narrative:context ratio (sum of scene tokens / sum of context tokens), in one batch."""
    msgs = [r.messages if isinstance(r, TrainingRecord) else r["messages"] for r in records]
    texts = []
    for m in msgs:
        plain = [x.model_dump() if isinstance(x, ChatMessage) else x for x in m]
        answers = [x["content"] for x in plain if x["role"] == "assistant"]
        texts += [render_chatml(plain), answers[-1] if answers else ""]
    counts = counter.count_batch(texts) if texts else []
    totals, scenes = counts[0::2], counts[1::2]
    contexts = [t - s for t, s in zip(totals, scenes)]
    return DatasetStats(
        records=len(msgs),
        tokens=TokenSummary.of(totals),
        scene=TokenSummary.of(scenes),
        context=TokenSummary.of(contexts),
        narrative_context_ratio=round(sum(scenes) / sum(contexts), 3) if sum(contexts) else None,
    )


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file (blank lines skipped); errors name the file and line."""
    path = Path(path)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NovelcraftError(f"cannot read ({exc.strerror or exc})", path=path, step="read") from None
    for num, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise NovelcraftError(f"line {num}: invalid JSON ({exc.msg})", path=path, step="read") from None
    return rows


# --------------------------------------------------------------------------- data card


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def render_data_card(stats: CompileStats, recipe: CompileRecipe) -> str:
    """The data set's README.md (Markdown; deterministic: no dates, no timings)."""
    s = stats
    total_records = s.records["train"] + s.records["validation"]
    lines = [
        f"# {s.name}: novelcraft training set",
        "",
        f"ChatML records for fine-tuning a novel writer: {s.records['train']} train and {s.records['validation']} "
        f"validation records from {len(s.books)} book{'s' * (len(s.books) != 1)}, compiled by novelcraft "
        f"{__version__}. Each record is `{{\"messages\": [system, user, assistant]}}`: the system turn is the author "
        "persona, the user turn holds `<world_context>`, `<running_summary>` (first line `NOVEL PROGRESS: XX%`) and "
        "`<scene_instruction>`, and the assistant turn is the scene text. Token counts are exact, with "
        f"`{s.tokenizer}`, of each record rendered with the {s.chat_template} template; the record budget is "
        f"{s.max_tokens} tokens.",
        "",
        "## Files",
        "",
        "| file | content |",
        "| --- | --- |",
    ]
    present = [split for split in SPLITS if s.records[split]]
    if "jsonl" in recipe.export.formats:
        for split in present:
            lines.append(f"| `{split}.jsonl` | {s.records[split]} records |")
    if present:
        names = ", ".join(f"`{split}.meta.jsonl`" for split in present)
        lines.append(f"| {names} | per record: book, scene, reference flag, position, progress, token counts "
                     "(same order as the records) |")
    if "hf" in recipe.export.formats:
        lines.append(f"| `{HF_DIR}/` | `datasets.DatasetDict` (`load_from_disk`): messages plus the metadata columns |")
    lines += ["| `stats.json` | these statistics as JSON, every dropped scene |",
              "| `recipe.resolved.yaml` | the recipe below |", ""]

    lines += [
        "## Books",
        "",
        "| book | title | author | narrative scenes | reference scenes | train | validation | dropped |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in s.books:
        lines.append(
            f"| `{b.book_id}` | {b.title} | {b.author} | {b.narrative_scenes} | {b.reference_scenes} | {b.train} | "
            f"{b.validation} | {b.dropped} |"
        )
    lines.append("")

    lines += ["## Tokens per record", ""]
    if total_records:
        lines += ["| part | min | median | p95 | max | mean | total |", "| --- |" + " ---: |" * 6]
        labels = {
            "record": "whole record (chat template)",
            "scene": "scene (assistant)",
            "context": "context (everything else)",
            "system": "system prompt",
            "world_context": "world context",
            "running_summary": "running summary (with progress line)",
            "instruction": "scene instruction",
        }
        for key, label in labels.items():
            t = s.tokens[key]
            lines.append(
                f"| {label} | {_fmt(t.min)} | {_fmt(t.median)} | {_fmt(t.p95)} | {_fmt(t.max)} | {_fmt(t.mean)} | "
                f"{_fmt(t.total)} |"
            )
        if s.narrative_context_ratio:
            lines += ["", f"Narrative:context ratio (scene tokens ÷ context tokens, all records): "
                          f"**{s.narrative_context_ratio:.2f}:1** (the design aims at 2:1 to 3:1)."]
        if s.over_section_budget:
            parts = ", ".join(f"{k} {v}" for k, v in s.over_section_budget.items())
            lines += ["", f"Records over a section budget (kept, the record still fits): {parts}."]
    else:
        lines.append("No records.")
    lines += ["", f"## Budget histogram (tokens per record, bins of {HISTOGRAM_BIN})", "",
              "| tokens | records | |", "| --- | ---: | --- |"]
    peak = max((n for _, n in s.histogram), default=0)
    for label, n in s.histogram:
        bar = "█" * (round(30 * n / peak) if peak else 0)
        lines.append(f"| {label} | {n} | {bar} |")
    lines.append("")

    lines += ["## Split", ""]
    sp = s.split
    how = f"by {sp.effective_by}" + (f" (asked: by {sp.by})" if sp.by != sp.effective_by else "")
    lines.append(f"{how}, validation fraction {sp.validation_fraction:g}, seed {sp.seed}.")
    if sp.validation_books:
        lines.append(f"Validation books: {', '.join(f'`{b}`' for b in sp.validation_books)}.")
    if sp.effective_by == "scene" and sp.validation_fraction > 0:
        lines.append("Validation scenes come from the same books as training scenes: the loss measures fit to "
                     "those books rather than generalization to unseen ones.")
    if sp.note:
        lines.append(f"Note: {sp.note}.")
    lines.append("")

    lines += ["## Dropped scenes", ""]
    if not s.dropped and not s.reference_scenes_dropped:
        lines.append("None.")
    if s.reference_scenes_dropped:
        lines.append(f"{s.reference_scenes_dropped} reference scenes (foreword, notes, ...) left out by the recipe "
                     "(`reference_scenes: drop`).")
    if s.dropped:
        lines += ["", "| book | scene | reason |", "| --- | ---: | --- |"]
        for d in s.dropped[:50]:
            lines.append(f"| `{d.book_id}` | {d.scene_id} | {d.detail} |")
        if len(s.dropped) > 50:
            lines.append(f"| … | | {len(s.dropped) - 50} more in stats.json |")
    lines += ["", "## Recipe", "", "```yaml", dump_recipe(recipe).rstrip("\n"), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- files


def resolve_book_files(
    patterns: Sequence[str], book_files: Sequence[str] = DEFAULT_BOOK_FILES, base: Path | None = None
) -> list[Path]:
    """Book JSON files named by ``patterns``: files, glob patterns, and folders. In a folder, each
    directory holding matches of ``book_files`` gives one book: the first of those patterns (in order)
    that matches a Book JSON, and of its matches the last in name order (the latest stage).
    Unique, in order."""
    base = base or Path.cwd()
    out: list[Path] = []

    def from_dir(d: Path) -> list[Path]:
        by_parent: dict[Path, list[list[Path]]] = {}
        for i, pattern in enumerate(book_files):
            for f in sorted(d.rglob(pattern)):
                hidden = any(part.startswith(".") for part in f.relative_to(d).parts)
                if f.is_file() and not f.name.endswith(".meta.json") and not hidden:
                    by_parent.setdefault(f.parent, [[] for _ in book_files])[i].append(f)
        picked = []
        for parent in sorted(by_parent):
            candidates = [f for group in by_parent[parent] for f in reversed(group)]
            book = next((f for f in candidates if _looks_like_book(f)), None)
            if book is not None:
                picked.append(book)
        return picked

    for pattern in patterns:
        p = Path(pattern).expanduser()
        p = p if p.is_absolute() else base / p
        if any(ch in pattern for ch in "*?["):
            matches = []
            for m in sorted(glob.glob(str(p), recursive=True)):
                matches += from_dir(Path(m)) if Path(m).is_dir() else [Path(m)]
        elif p.is_dir():
            matches = from_dir(p)
        elif p.is_file():
            matches = [p]
        else:
            raise NovelcraftError(f"no such file or directory: '{pattern}'", step="inputs")
        if not matches:
            looked = ", ".join(book_files)
            raise NovelcraftError(f"no Book JSON files match '{pattern}' (looked for {looked})", step="inputs")
        for m in matches:
            if m not in out:
                out.append(m)
    return out


def _looks_like_book(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "meta" in data and "scenes" in data


def load_book(path: str | Path) -> Book:
    """Read a Book JSON file; errors name the file and the first invalid fields."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NovelcraftError(f"cannot read ({exc.strerror or exc})", path=path, step="load") from None
    try:
        return Book.model_validate_json(text)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        parts = [f"{'.'.join(str(x) for x in e['loc']) or '(file)'}: {e['msg']}" for e in errs[:3]]
        more = f" (and {len(errs) - 3} more)" if len(errs) > 3 else ""
        raise NovelcraftError(
            "not a valid Book JSON: " + "; ".join(parts) + more + " (novelcraft validate FILE lists every problem)",
            path=path,
            step="load",
        ) from None


def export_hf_dataset(result: CompileResult, path: str | Path) -> Path:
    """Save the splits as a ``datasets.DatasetDict`` with ``save_to_disk`` (atomically: written to a
    temporary folder, then moved into place). Columns: ``messages`` and the :class:`RecordMeta` fields."""
    try:
        import datasets
    except ImportError:
        raise NovelcraftError(
            "export format 'hf' needs the 'datasets' package (pip install datasets), or remove hf from export.formats",
            step="export",
        ) from None
    path = Path(path)
    message = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    columns: dict[str, Any] = {"messages": [message]}
    for name, field in RecordMeta.model_fields.items():
        ann = field.annotation
        if ann is int:
            columns[name] = datasets.Value("int32")
        elif ann is bool:
            columns[name] = datasets.Value("bool")
        else:
            columns[name] = datasets.Value("string")
    features = datasets.Features(columns)
    splits = {}
    for split in SPLITS:
        rows = [
            {"messages": [m.model_dump() for m in r.record.messages], **r.meta.model_dump()}
            for r in getattr(result, split)
        ]
        splits[split] = datasets.Dataset.from_list(rows, features=features)
    dd = datasets.DatasetDict(splits)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # our own progress reporting is the caller's; keep stderr clean
    try:
        dd.save_to_disk(str(tmp))
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        tmp.rename(path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bars:
            datasets.enable_progress_bars()
    return path


def write_compiled(result: CompileResult, recipe: CompileRecipe, run_dir: str | Path) -> list[Path]:
    """Write the data files of ``result`` under ``run_dir`` (atomically); returns the paths written."""
    run_dir = Path(run_dir)
    written = []
    for split in SPLITS:
        recs = getattr(result, split)
        data, meta = run_dir / f"{split}.jsonl", run_dir / f"{split}.meta.jsonl"
        if not recs:
            # a stale split from an earlier run must not survive next to the new one
            data.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            continue
        if "jsonl" in recipe.export.formats:
            written.append(atomic_write_jsonl(data, [r.record for r in recs]))
        written.append(atomic_write_jsonl(meta, [r.meta for r in recs]))
    if "hf" in recipe.export.formats:
        written.append(export_hf_dataset(result, run_dir / HF_DIR))
    if recipe.export.data_card:
        written.append(atomic_write_text(run_dir / DATA_CARD, render_data_card(result.stats, recipe)))
    return written


def load_compiled(run_dir: str | Path) -> CompileResult:
    """Read a compiled data set back (records from ``*.meta.jsonl`` + ``*.jsonl``, stats from stats.json);
    the result is marked ``skipped`` (nothing was compiled). Needs the ``jsonl`` export format."""
    run_dir = Path(run_dir)
    try:
        raw = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
        stats = CompileStats.model_validate(raw["stats"])
    except (OSError, ValueError, KeyError, ValidationError) as exc:
        raise NovelcraftError(f"no readable stats.json ({type(exc).__name__})", path=run_dir, step="load") from None
    splits: dict[str, list[CompiledRecord]] = {}
    for split in SPLITS:
        meta_path = run_dir / f"{split}.meta.jsonl"
        if not meta_path.exists():
            splits[split] = []
            continue
        metas = [RecordMeta.model_validate(r) for r in read_jsonl(meta_path)]
        rows = read_jsonl(run_dir / f"{split}.jsonl")
        if len(rows) != len(metas):
            raise NovelcraftError(f"{len(rows)} records but {len(metas)} metadata lines", path=meta_path, step="load")
        splits[split] = [CompiledRecord(record=TrainingRecord.model_validate(r), meta=m) for r, m in zip(rows, metas)]
    return CompileResult(train=splits["train"], validation=splits["validation"], stats=stats, run_dir=str(run_dir),
                         skipped=True, files=raw.get("files", []))


def _expected_files(recipe: CompileRecipe, stats: CompileStats) -> list[str]:
    files = []
    for split in SPLITS:
        if stats.records[split]:
            files.append(f"{split}.meta.jsonl")
            if "jsonl" in recipe.export.formats:
                files.append(f"{split}.jsonl")
    if "hf" in recipe.export.formats:
        files.append(HF_DIR)
    if recipe.export.data_card:
        files.append(DATA_CARD)
    return files


def run_compile(
    recipe: CompileRecipe,
    counter: "TokenCounter | None" = None,
    *,
    force: bool = False,
    progress: bool = False,
) -> CompileResult:
    """Compile the recipe's books into ``recipe.output_dir/recipe.name`` (see the module docstring).

    Skips the work (and returns the stored data set) when inputs, recipe, tokenizer and novelcraft
    version are unchanged since the last run and its files are in place; ``force`` recompiles.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    paths = resolve_book_files(recipe.books, recipe.book_files)
    if counter is None:
        from .tokens import load_token_counter

        counter = load_token_counter(recipe.tokenizer)
    system_prompt = recipe.system_prompt.resolve()
    run_dir = recipe.run_dir
    fingerprint = sha256_text(
        json.dumps(
            [__version__, dump_recipe(recipe), counter.name, system_prompt, [(str(p), sha256_file(p)) for p in paths]]
        )
    )
    stats_path = run_dir / "stats.json"
    # the stored records are read back from the JSONL files, so only a JSONL export can be skipped
    if not force and "jsonl" in recipe.export.formats and stats_path.is_file():
        try:
            previous = json.loads(stats_path.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
        if previous.get("fingerprint") == fingerprint and all(
            (run_dir / f).exists() for f in previous.get("files", [])
        ):
            log.info("%s: inputs and recipe unchanged, skipped (--force recompiles)", run_dir)
            result = load_compiled(run_dir)
            result.seconds = time.perf_counter() - t0
            return result

    books = []
    for p in tqdm(paths, desc="load books", unit="book", disable=not progress):
        books.append(load_book(p))
    result = compile_books(books, recipe, counter, sources=[str(p) for p in paths], system_prompt=system_prompt)
    if not result.train and not result.validation:
        raise NovelcraftError(
            f"no records: all {sum(len(b.scenes) for b in books)} scenes were dropped "
            f"({result.summary().splitlines()[-1].strip()})",
            path=paths[0] if len(paths) == 1 else None,
            step="compile",
        )
    result.run_dir = str(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_resolved_recipe(recipe, run_dir)
    write_compiled(result, recipe, run_dir)
    result.files = _expected_files(recipe, result.stats)
    result.seconds = time.perf_counter() - t0
    atomic_write_json(
        stats_path,
        {
            "novelcraft_version": __version__,
            "fingerprint": fingerprint,
            "inputs": [str(p) for p in paths],
            "files": result.files,
            "seconds": round(result.seconds, 3),
            "stats": result.stats.model_dump(mode="json"),
        },
    )
    return result


# --------------------------------------------------------------------------- command line


def _cmd_compile(args: "argparse.Namespace") -> int:
    from .recipes import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if not isinstance(recipe, CompileRecipe):
        raise NovelcraftError(f"expected a recipe of kind 'compile', got '{recipe.kind}'", path=args.recipe)
    result = run_compile(recipe, force=args.force, progress=not args.no_progress)
    print(result.summary())
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``novelcraft compile RECIPE [overrides] [--force]`` to the command line."""
    p = subparsers.add_parser(
        "compile", help="compile Book JSON files into a ChatML training set (JSONL, HF dataset, data card)"
    )
    p.add_argument("recipe", help="YAML recipe (kind: compile)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. split.seed=7")
    p.add_argument("--force", action="store_true", help="recompile even when inputs and recipe are unchanged")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compile)


__all__ = [
    "CompileRecipe",
    "CompileResult",
    "CompileStats",
    "CompiledRecord",
    "DatasetStats",
    "RecordMeta",
    "SplitConfig",
    "SystemPromptConfig",
    "ExportConfig",
    "TokenSummary",
    "USER_SECTIONS",
    "compile_books",
    "dataset_stats",
    "default_system_prompt",
    "export_hf_dataset",
    "load_book",
    "load_compiled",
    "progress_percent",
    "read_jsonl",
    "register",
    "render_chatml",
    "render_data_card",
    "render_summary_section",
    "render_user_turn",
    "resolve_book_files",
    "run_compile",
    "scene_messages",
    "split_records",
    "write_compiled",
]

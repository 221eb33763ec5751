"""A finished novel as files: Markdown, EPUB (pandoc), Novel JSON for the benchmark, and a JSON trace.

``novel.md`` starts with ``# Title``; chapters are ``## Chapter N: Title`` and scenes within a chapter are
separated by ``* * *``, the layout :func:`novelcraft.bench.parse_markdown_novel` reads. ``novel.json`` is a
:class:`novelcraft.bench.Novel` (title and scenes with text, goal = the rendered instruction, summary =
the rendered running summary after the scene, target_words), readable by ``novelcraft bench``.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

from pydantic import Field

from ..chat_format import progress_percent, render_summary_section
from ..io import atomic_write_json, atomic_write_text, sha256_text
from ..models import Novel
from ..pandoc import run_pandoc
from ..strict import Record
from .state import NovelState

SCENE_BREAK = "* * *"
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")


def markdown_safe(text: str) -> str:
    """Scene text whose lines cannot turn into headings or scene breaks (``#`` lines, ``***``/``---`` rules)."""
    lines = []
    for line in text.split("\n"):
        if line.lstrip().startswith("#"):
            line = "\\" + line.lstrip()
        elif _RULE.match(line):
            line = "\\" + line.strip()
        lines.append(line)
    return "\n".join(lines)


def render_markdown(state: NovelState, *, title_heading: bool = True) -> str:
    """The novel as Markdown. Without ``title_heading`` chapters are level-1 headings (one EPUB chapter each)."""
    assert state.outline is not None
    level = "##" if title_heading else "#"
    parts: list[str] = [f"# {state.outline.title}", ""] if title_heading else []
    chapter = None
    for plan, scene in zip(state.outline.scenes, state.scenes):
        if plan.chapter != chapter:
            chapter = plan.chapter
            parts += [f"{level} Chapter {plan.chapter}: {plan.chapter_title}", ""]
        else:
            parts += [SCENE_BREAK, ""]
        parts += [markdown_safe(scene.text.strip()), ""]
    return "\n".join(parts).rstrip() + "\n"


def novel_record(state: NovelState) -> dict[str, Any]:
    """The Novel JSON of the benchmark (validated against :class:`novelcraft.bench.novel.Novel`)."""

    assert state.outline is not None
    scenes = []
    for plan, scene in zip(state.outline.scenes, state.scenes):
        scenes.append(
            {
                "index": scene.index,
                "text": scene.text,
                "chapter": plan.chapter,
                "chapter_title": plan.chapter_title,
                "goal": plan.instruction.render(),
                "summary": scene.summary.render() if scene.summary is not None else None,
                "target_words": plan.target_words,
            }
        )
    novel = Novel.model_validate({"title": state.outline.title, "source": "generated", "scenes": scenes})
    return novel.model_dump(mode="json", exclude={"path"})


class TracePrompt(Record):
    """The per-scene parts of the prompt an accepted scene answered."""

    running_summary: str = Field(
        ..., description="the running-summary section of the scene prompt, with its progress line"
    )
    scene_instruction: str
    notes: list[str] = Field(default_factory=list, description="retry notes the accepted answer was prompted with")


class TraceScene(Record):
    """How one scene was made."""

    index: int = Field(..., ge=1)
    act: int
    chapter: int
    chapter_title: str
    prompt: TracePrompt
    target_words: int
    words: int
    attempts: int
    flagged: bool
    flag_reason: str | None
    trimmed: bool
    tokens: dict[str, int] = Field(..., description="prompt, completion, summary_prompt, summary_completion")
    seconds: dict[str, float] = Field(..., description="generation, summary")
    summary: str | None
    summary_flagged: bool
    summary_flag_reason: str | None


class Trace(Record):
    """``trace.json``: per scene the prompt sections, retry notes, attempts, flags, tokens and timings."""

    novel_id: str
    title: str
    seed: str
    sample: int
    key: str
    engine: dict[str, Any]
    branched_from: dict[str, Any] | None
    system_prompt: str
    world_context: str | None
    world_context_flagged: bool
    scenes: list[TraceScene]


def trace_record(state: NovelState, opening_summary: str) -> Trace:
    """Per-scene trace: prompt sections, retry notes, attempts, flags, tokens, timings, summary written after."""
    assert state.outline is not None
    total = state.total
    scenes = []
    for plan, scene in zip(state.outline.scenes, state.scenes):
        progress = progress_percent(scene.index, total)
        scenes.append(
            {
                "index": scene.index,
                "act": plan.act,
                "chapter": plan.chapter,
                "chapter_title": plan.chapter_title,
                "prompt": {
                    "running_summary": render_summary_section(
                        state.summary_before(scene.index, opening_summary), progress
                    ),
                    "scene_instruction": plan.instruction.render(),
                    "notes": scene.notes,
                },
                "target_words": plan.target_words,
                "words": scene.words,
                "attempts": scene.attempts,
                "flagged": scene.flagged,
                "flag_reason": scene.flag_reason,
                "trimmed": scene.trimmed,
                "tokens": {
                    "prompt": scene.prompt_tokens,
                    "completion": scene.completion_tokens,
                    "summary_prompt": scene.summary_prompt_tokens,
                    "summary_completion": scene.summary_completion_tokens,
                },
                "seconds": {"generation": round(scene.seconds, 3), "summary": round(scene.summary_seconds, 3)},
                "summary": scene.summary.render() if scene.summary is not None else None,
                "summary_flagged": scene.summary_flagged,
                "summary_flag_reason": scene.summary_flag_reason,
            }
        )
    return Trace.model_validate(
        {
            "novel_id": state.novel_id,
            "title": state.outline.title,
            "seed": state.seed_path,
            "sample": state.sample,
            "key": state.key,
            "engine": state.settings.get("llm", {}),
            "branched_from": state.branched_from,
            "system_prompt": state.system_prompt,
            "world_context": state.world_context_text,
            "world_context_flagged": state.world_context_flagged,
            "scenes": scenes,
        }
    )


def write_epub(markdown: str, path: str | Path, *, title: str, author: str, language: str = "en") -> Path:
    """Convert chapter-level Markdown to EPUB 3 with pandoc (written atomically).

    The EPUB is reproducible: its identifier is a UUID of its content and no build time goes into it
    (``SOURCE_DATE_EPOCH``), so the same novel always gives the same bytes."""
    path = Path(path)
    identifier = uuid.uuid5(
        uuid.NAMESPACE_URL, "novelcraft:" + sha256_text("\n".join([title, author, language, markdown]))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".epub-") as tmp:
        src = Path(tmp) / "novel.md"
        src.write_text(markdown, encoding="utf-8")
        out = Path(tmp) / "novel.epub"
        run_pandoc(
            [
                str(src),
                "-f",
                "markdown-smart",
                "-t",
                "epub3",
                "-o",
                str(out),
                "--metadata",
                f"title={title}",
                "--metadata",
                f"author={author}",
                "--metadata",
                f"lang={language}",
                "--metadata",
                f"identifier=urn:uuid:{identifier}",
                "--split-level=1",
            ],
            path=path,
            step="epub",
            env={"SOURCE_DATE_EPOCH": "0"},
        )
        out.replace(path)
    return path


def write_novel_files(
    state: NovelState, novel_dir: str | Path, *, opening_summary: str, markdown: bool = True, epub: bool = True
) -> list[Path]:
    """Write ``novel.md``, ``novel.epub``, ``novel.json`` and ``trace.json`` of a finished novel."""
    novel_dir = Path(novel_dir)
    assert state.outline is not None
    files = []
    if markdown:
        files.append(atomic_write_text(novel_dir / "novel.md", render_markdown(state)))
    if epub:
        files.append(
            write_epub(
                render_markdown(state, title_heading=False),
                novel_dir / "novel.epub",
                title=state.outline.title,
                author=state.seed.author,
            )
        )
    files.append(atomic_write_json(novel_dir / "novel.json", novel_record(state)))
    files.append(atomic_write_json(novel_dir / "trace.json", trace_record(state, opening_summary)))
    return files

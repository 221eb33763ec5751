"""Builders of data-set files for the validation tests: training records, scenes, books, JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from novelcraft.tokens import load_token_counter
from novelcraft.validate import ValidationIssue

USER_TURN = (
    "<world_context>\nA grim world.\n</world_context>\n"
    "<running_summary>\nNOVEL PROGRESS: 0%\n\nNothing has happened yet.\n</running_summary>\n"
    "<scene_instruction>\nWrite the scene.\n</scene_instruction>"
)


@pytest.fixture(scope="module")
def counter():
    """The real Qwen3 tokenizer (``load_token_counter`` caches it: one load for every module)."""
    return load_token_counter()


@pytest.fixture(scope="session")
def record():
    """``record(answer, user=USER_TURN)``: a training record as a plain mapping."""

    def record(answer: str = "The scene text.", *, user: str = USER_TURN) -> dict[str, Any]:
        return {
            "messages": [
                {"role": "system", "content": "You are a novelist."},
                {"role": "user", "content": user},
                {"role": "assistant", "content": answer},
            ]
        }

    return record


@pytest.fixture(scope="session")
def write_jsonl():
    """``write_jsonl(path, rows)``: rows (mappings, or raw lines as strings) as a JSONL file."""

    def write_jsonl(path: Path, rows: list[Any]) -> Path:
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
        return path

    return write_jsonl


@pytest.fixture(scope="session")
def scene():
    """``scene(sid, text, chapter, **extra)``: a scene as a plain mapping."""

    def scene(sid: int, text: str | None = None, chapter: int = 1, **extra: Any) -> dict[str, Any]:
        return {"scene_id": sid, "chapter_index": chapter, "text": text or f"Scene number {sid} happens here.", **extra}

    return scene


@pytest.fixture(scope="session")
def book():
    """``book(scenes, **meta)``: a Book JSON mapping around ``scenes``."""

    def book(scenes: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
        m = {
            "book_id": "sample_book",
            "title": "Sample",
            "author": "Anon",
            "word_count": 100,
            "total_chapters": 1,
            "total_scenes": len(scenes),
        }
        m.update(meta)
        return {"meta": m, "chapters": [], "scenes": scenes}

    return book


@pytest.fixture(scope="session")
def write_json():
    """``write_json(path, data)``: ``data`` as an indented JSON file."""

    def write_json(path: Path, data: Any) -> Path:
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path

    return write_json


@pytest.fixture(scope="session")
def reasons():
    """``reasons(issues)``: the issues one per line, for assertion messages."""

    def reasons(issues: list[ValidationIssue]) -> str:
        return "\n".join(i.format() for i in issues)

    return reasons

"""``llm_debug.jsonl``: every prompt and answer of a run, one JSON line each (``llm.debug_log: true``)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from ..strict import Record
from .types import LLMRequest, LLMResponse


class DebugLine(Record):
    """One line of ``llm_debug.jsonl``: a request and the engine's answer."""

    key: str
    messages: list[dict[str, str]]
    schema_name: str | None = Field(None, alias="schema")
    max_tokens: int
    answer: str
    error: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class DebugLog:
    """Appends every prompt and answer to a JSONL file (``llm.debug_log: true``)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None

    def write(self, request: LLMRequest, response: LLMResponse) -> None:
        """Append one prompt and its answer (no-op when the log is off)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rec = {
            "key": request.key,
            "messages": list(request.messages),
            "schema": request.schema.__name__ if request.schema else None,
            "max_tokens": request.max_tokens,
            "answer": response.text,
            "error": response.error,
            "finish_reason": response.finish_reason,
            "prompt_tokens": response.prompt_tokens,
            "completion_tokens": response.completion_tokens,
            "seconds": round(response.seconds, 3),
        }
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")

"""The one LLM interface: a batch of chat requests in, a batch of completions out.

Every backend (``transformers``, ``vllm``, ``openai``) implements :class:`Engine`; structured output is
requested with a pydantic schema per request and enforced by Outlines under the backend. Retry,
validation and compression live in :mod:`novelcraft.llm.tasks`, once, for all backends; the engines are
built by :mod:`novelcraft.llm.factory`. This module imports no backend.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from ..errors import NovelcraftError


class LLMError(NovelcraftError):
    """An LLM call failed for good (after the configured retries)."""


@dataclasses.dataclass(frozen=True)
class LLMRequest:
    """One chat request.

    ``messages`` are ``{"role", "content"}`` dicts; put the shared part (system, world context) first so
    prefix caching works. ``schema`` (a pydantic model) asks for JSON valid against it; ``None`` asks
    for free text.
    """

    key: str
    messages: tuple[dict[str, str], ...]
    schema: type[BaseModel] | None = None
    max_tokens: int = 512

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError(f"request {self.key}: no messages")
        object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))


@dataclasses.dataclass
class LLMResponse:
    """The answer to one request. ``error`` is set (and ``text`` empty) when the backend failed it."""

    key: str
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def truncated(self) -> bool:
        """Whether the answer stopped at its token limit."""
        return self.finish_reason == "length"


@runtime_checkable
class Engine(Protocol):
    """A loaded model behind one backend. ``generate`` answers a batch, in order. An engine that batches
    continuously also has ``open_stream()`` (see :class:`RequestStream`)."""

    name: str

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answer ``requests`` in order, one response each (a failed request has ``error`` set)."""

    def close(self) -> None:
        """Free the model or the connection; the engine is unusable afterwards."""


@runtime_checkable
class RequestStream(Protocol):
    """Requests in flight on an engine that answers each one as soon as it is done (continuous batching).

    Engines that can keep a batch full while answers come and go offer ``open_stream() -> RequestStream |
    None`` (``None`` when their config asks for rounds: ``llm.scheduling: rounds``); the scheduler then sends
    a task's next request the moment its previous answer is judged, instead of waiting for a whole batch.
    """

    def add(self, requests: Sequence[LLMRequest]) -> None:
        """Start answering ``requests`` (keys unique among those in flight)."""

    def wait(self) -> list[LLMResponse]:
        """Block until at least one request in flight is answered; the answers finished since the last call,
        in any order (``[]`` when nothing is in flight). A request that cannot run gets ``error`` set."""

    @property
    def in_flight(self) -> int:
        """Requests added and not yet returned by :meth:`wait`."""

    def close(self) -> None:
        """Abandon what is in flight; the engine stays usable."""


#: whitespace constrained JSON may hold between tokens: at most one space (free whitespace lets a model pad an
#: answer to its token limit, and costs tokens for nothing)
JSON_WHITESPACE = r"[ ]?"
#: characters per token assumed when bounding an answer from its schema (English prose runs ~4.2 on the
#: Qwen3 and Llama tokenizers; punctuation-heavy text less)
CHARS_PER_TOKEN = 3.5


def json_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema sent to constrained decoding (pydantic's, with our ``x-`` extensions kept)."""
    return schema.model_json_schema()


def answer_token_bound(schema: type[BaseModel], chars_per_token: float = CHARS_PER_TOKEN) -> int | None:
    """The most tokens a JSON answer valid against ``schema`` (with :data:`JSON_WHITESPACE`) can take: every
    string at its ``maxLength``, every list at its ``maxItems``, keys and punctuation counted; ``None`` when a
    string or list has no bound. Stages set their ``max_tokens`` from it, so no answer runs to a limit."""
    js = json_schema_of(schema)
    defs = js.get("$defs", {})

    def bound(node: dict[str, Any]) -> float | None:
        if "$ref" in node:
            return bound(defs[node["$ref"].rsplit("/", 1)[-1]])
        for key in ("anyOf", "oneOf"):
            if key in node:
                parts = [bound(n) for n in node[key]]
                return None if any(p is None for p in parts) else max(p for p in parts if p is not None)
        kind = node.get("type")
        if kind == "string":
            if "enum" in node:
                return max(len(str(v)) for v in node["enum"]) / chars_per_token + 2
            return None if "maxLength" not in node else node["maxLength"] / chars_per_token + 2
        if kind in ("integer", "number"):
            return 4
        if kind == "boolean" or kind == "null":
            return 2
        if kind == "array":
            item = bound(node.get("items", {}))
            if item is None or "maxItems" not in node:
                return None
            return node["maxItems"] * (item + 1) + 2
        if kind == "object":
            total = 2.0
            for name, sub in node.get("properties", {}).items():
                b = bound(sub)
                if b is None:
                    return None
                total += b + len(name) / chars_per_token + 4  # quotes, colon, comma, a space
            return total
        return None

    total = bound(js)
    return None if total is None else int(total) + 8


def group_by_schema(requests: Sequence[LLMRequest]) -> list[tuple[type[BaseModel] | None, list[int]]]:
    """Indices of requests sharing one output schema, in first-seen order (backends batch per schema)."""
    groups: dict[Any, list[int]] = {}
    order: list[Any] = []
    for i, r in enumerate(requests):
        if r.schema not in groups:
            groups[r.schema] = []
            order.append(r.schema)
        groups[r.schema].append(i)
    return [(s, groups[s]) for s in order]


class Timer:
    """Context manager measuring wall seconds: ``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0

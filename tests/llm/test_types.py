"""``novelcraft.llm.types``: requests grouped by schema, responses, the timer."""

from __future__ import annotations

import time

from novelcraft.llm.types import LLMRequest, LLMResponse, Timer, group_by_schema
from novelcraft.models import Instruction, RunningSummary


def chat(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": text},)


def test_groups_keep_first_seen_order() -> None:
    reqs = [
        LLMRequest(key="a", messages=chat("a"), max_tokens=8, schema=Instruction),
        LLMRequest(key="b", messages=chat("b"), max_tokens=8),
        LLMRequest(key="c", messages=chat("c"), max_tokens=8, schema=Instruction),
        LLMRequest(key="d", messages=chat("d"), max_tokens=8, schema=RunningSummary),
    ]
    assert group_by_schema(reqs) == [(Instruction, [0, 2]), (None, [1]), (RunningSummary, [3])]


def test_truncated_and_timer() -> None:
    assert LLMResponse(key="k", text="x", finish_reason="length").truncated
    assert not LLMResponse(key="k", text="x", finish_reason="stop").truncated
    with Timer() as t:
        time.sleep(0.01)
    assert t.seconds >= 0.01

"""``novelcraft.llm.answers``: parsing an answer against its schema, word budgets, the answer's token bound."""

from __future__ import annotations

import json

from novelcraft.llm.answers import parse_answer
from novelcraft.models import Instruction

GOOD = {
    "scene_goal": "Avis meets Ernest at dinner.",
    "characters_present": ["Avis", "Ernest"],
    "emotional_beat": "wary fascination",
    "constraints": "first person",
}


def test_parse_answer_kinds():
    value, verdict = parse_answer(json.dumps(GOOD), Instruction)
    assert verdict.kind == "ok" and value.characters_present == ["Avis", "Ernest"]
    value, verdict = parse_answer("Sure! ```json\n" + json.dumps(GOOD) + "\n```", Instruction)
    assert verdict.kind == "ok"
    value, verdict = parse_answer('{"scene_goal": "x"', Instruction)
    assert value is None and verdict.kind == "retry" and "not valid JSON" in verdict.message
    value, verdict = parse_answer(json.dumps({**GOOD, "extra": 1}), Instruction)
    assert value is None and verdict.kind == "retry" and "extra" in verdict.message
    long = {**GOOD, "scene_goal": " ".join(["word"] * 40)}
    value, verdict = parse_answer(json.dumps(long), Instruction)
    assert value is not None and verdict.kind == "compress" and "40 words, budget is 30" in verdict.message


def test_answer_bound_follows_the_schema():
    from novelcraft.llm.answers import answer_max_tokens
    from novelcraft.llm.types import answer_token_bound
    from novelcraft.models import RunningSummary
    from novelcraft.prep.llm_tasks import boundaries_schema
    from novelcraft.tokens import load_token_counter

    counter = load_token_counter()
    # the longest valid answers (every string at its maxLength, of real words) fit their bound
    for schema in (RunningSummary, Instruction):
        props = schema.model_json_schema()["properties"]
        words = "mountain evening " * 200
        data = {}
        for name, p in props.items():
            if p.get("type") == "array":
                data[name] = [words[: p["items"]["maxLength"]].strip()] * p["maxItems"]
            else:
                data[name] = words[: p["maxLength"]].strip()
        longest = json.dumps(data, separators=(", ", ": "))
        assert counter.count(longest) <= answer_token_bound(schema), schema.__name__
    assert answer_token_bound(boundaries_schema(12)) < answer_token_bound(boundaries_schema(40))
    assert answer_max_tokens(123, RunningSummary) == 123  # the recipe's setting wins
    assert answer_max_tokens(None, RunningSummary) == answer_token_bound(RunningSummary)

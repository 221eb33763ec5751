"""``novelcraft.gates``: the quality gates every LLM stage runs, on the answers weak models really give."""

from __future__ import annotations

from novelcraft.gates import (
    entities_problem,
    gate_chain,
    grounded_problem,
    listed_names,
    min_words_problem,
    names_missing,
    plain_prose_problem,
    prose_fields,
)
from novelcraft.llm.answers import Verdict
from novelcraft.models import Instruction

SCENE = (
    "Avis Cunningham poured the tea while Ernest Everhard argued with the Bishop about the machine. "
    "Her father, Professor Cunningham, listened by the window of the house in Berkeley."
)


def test_markup_code_and_json_fragments_are_not_prose() -> None:
    # what the embedded 135M model wrote into a running summary
    leaked = {
        "global_events": '[,*.*]"]{}}] {}}; // remove json file name',
        "active_characters": "<p><h2>",
    }
    assert "global_events holds markup or code" in plain_prose_problem(leaked)
    assert "holds markup" in plain_prose_problem({"x": "The <b>storm</b> broke."})
    assert "mostly symbols" in plain_prose_problem({"x": "-- ... ;; !! ** -- ,, .."})
    assert plain_prose_problem({"x": "Avis meets Ernest; the Bishop (uneasy) leaves at dusk."}) is None


def test_names_must_occur_in_the_text_the_model_saw() -> None:
    assert names_missing(["John Smith", "Mike Brown"], [SCENE]) == ["John Smith", "Mike Brown"]
    assert names_missing(["Avis", "Ernest Everhard", "the Bishop", "Professor Cunningham"], [SCENE]) == []
    assert names_missing(["the narrator", "two soldiers"], [SCENE]) == []  # descriptions, not names
    assert names_missing(["Ernest"], ["no name here", "Ernest spoke."]) == []  # the previous summary counts
    problem = grounded_problem("characters_present", ["Avis", "John Smith"], [SCENE])
    assert problem is not None and "'John Smith'" in problem and "Avis" not in problem


def test_listed_names_of_a_prose_field() -> None:
    field = "Avis Cunningham (anxious), Ernest Everhard: defiant; the Bishop and Professor Cunningham"
    assert listed_names(field) == ["Avis Cunningham", "Ernest Everhard", "the Bishop", "Professor Cunningham"]


def test_world_context_needs_words_and_the_books_own_names() -> None:
    assert min_words_problem({"tone_style": "Dark.", "world_rules": "a b c d e f g h"}, 8) == (
        "tone_style has 1 words; write at least 8"
    )
    about_this_book = "A socialist in Berkeley, Ernest Everhard, faces the Oligarchy; Avis tells it."
    assert entities_problem(about_this_book, SCENE, 2) is None
    problem = entities_problem("A young wizard goes to a castle school with his friends.", SCENE, 2)
    assert problem is not None and "names 0 of the book's own" in problem


def test_gate_chain_runs_quality_checks_then_the_budget() -> None:
    value = Instruction(
        scene_goal="Avis meets John Smith.", characters_present=["John Smith"], emotional_beat="awe", constraints="none"
    )
    calls = []

    def budget(v):
        calls.append(v)
        return Verdict.compress("too long")

    gate = gate_chain(
        lambda v: plain_prose_problem(prose_fields(v)),
        lambda v: grounded_problem("characters_present", v.characters_present, [SCENE]),
        budget=budget,
    )
    verdict = gate(value)
    assert verdict.kind == "retry" and "John Smith" in verdict.message and not calls
    ok = value.model_copy(update={"characters_present": ["Avis"]})
    assert gate(ok).kind == "compress" and calls == [ok]

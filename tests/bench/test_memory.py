"""Running-summary quality: parsing, word budgets, entity and keyword recall, drift."""

from __future__ import annotations

import pytest

from novelcraft.bench.memory import memory_drift, parse_summary, summary_budgets, summary_quality
from novelcraft.models import RunningSummary

SCENE = (
    "Mara rowed the boat across the harbour while Tobias watched the lighthouse. "
    "Mara tied the boat to the pier. The lighthouse was dark; Tobias climbed its stairs with the lantern. "
    "The lantern failed, and Mara shouted from the pier."
)


def _summary(**kw) -> RunningSummary:
    data = dict(
        scene_end_state="Mara waits on the pier while Tobias climbs the dark lighthouse.",
        emotional_beat="dread",
        immediate_tension="The lantern has failed.",
        global_events="Mara and Tobias reached the island and found the lighthouse dark.",
        unresolved_threads="Who put out the light?",
        world_state="Storm season; no ferry.",
        active_characters="Mara; Tobias",
        global_shift="The island is cut off.",
    )
    data.update(kw)
    return RunningSummary(**data)


def test_budgets_come_from_the_model_schema():
    b = summary_budgets()
    assert b["scene_end_state"] == 25 and b["global_events"] == 60 and b["active_characters"] == 15
    assert set(b) == set(RunningSummary.model_fields)


def test_parse_summary_round_trips_render():
    s = _summary()
    fields = parse_summary(s.render(progress_percent=40))
    assert fields == s.model_dump()


def test_summary_quality_faithful_summary():
    q = summary_quality(_summary().render(), SCENE)
    assert q.fields_present == 1.0 and q.budget_compliance == 1.0 and q.over_budget == []
    assert q.entity_recall == 1.0  # Mara and Tobias
    assert q.entity_hallucination == 0.0
    assert q.keyword_recall is not None and q.keyword_recall >= 0.5  # boat, lighthouse, lantern, pier...


def test_summary_quality_catches_invented_names_missing_fields_and_overruns():
    text = "\n".join(
        [
            "# Running Summary",
            "- SCENE END STATE: " + "Bartholomew waits " * 20,  # 40 words > 25 and a name never seen
            "- EMOTIONAL BEAT: calm",
        ]
    )
    q = summary_quality(text, SCENE)
    assert q.fields_present == pytest.approx(2 / 8)
    assert q.over_budget == ["scene_end_state"]
    assert q.budget_compliance == pytest.approx(0.5)
    assert q.entity_recall == 0.0
    assert q.entity_hallucination == 1.0


def test_memory_drift_churn_and_retention():
    a = _summary().render()
    same = _summary().render()
    other = _summary(
        global_events="Pirates burned the capital and the queen fled south.",
        active_characters="queen",
        unresolved_threads="war",
        world_state="war",
        global_shift="war",
    ).render()
    churn, retention = memory_drift([a, same, None, other], [SCENE, SCENE, SCENE, SCENE])
    assert churn[0] is None and churn[1] == 0.0 and churn[2] is None
    assert churn[3] > 0.8
    assert retention[0] == 1.0  # the top names so far (Mara, Tobias) are in the global fields
    assert retention[3] == 0.0

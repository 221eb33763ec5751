"""``novelcraft.generate.outline``: planning acts and scenes, and outline files."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.generate import StorySeed, load_seed
from novelcraft.generate.outline import (
    ActPlan,
    act_plan_schema,
    act_scenes_schema,
    assemble_outline,
    read_outline,
    scene_target_words,
    split_evenly,
    write_outline,
)
from novelcraft.models import Instruction

ROOT = Path(__file__).resolve().parents[2]


SEEDS = ROOT / "data" / "seeds"


def test_split_evenly():
    assert split_evenly(10, 3) == [4, 3, 3]
    assert split_evenly(3, 1) == [3]
    assert split_evenly(2, 5) == [1, 1]
    assert sum(split_evenly(47, 4)) == 47


def test_dynamic_schemas_bound_list_lengths():
    schema = act_scenes_schema(3).model_json_schema()
    assert schema["properties"]["scenes"]["minItems"] == 3 and schema["properties"]["scenes"]["maxItems"] == 3
    plan = act_plan_schema((2, 1)).model_json_schema()
    assert plan["properties"]["acts"]["minItems"] == 2 and plan["properties"]["acts"]["maxItems"] == 2


def instruction(i: int) -> Instruction:
    return Instruction(scene_goal=f"Goal {i}", characters_present=["Pim"], emotional_beat="fear", constraints="")


def test_assemble_outline_numbers_chapters_across_acts(tmp_path):
    seed = load_seed(SEEDS / "clockwork-harbour.yaml")
    plan = ActPlan.model_validate(
        {
            "acts": [
                {"title": "One", "summary": "s", "chapter_titles": ["A", "B"]},
                {"title": "Two", "summary": "s", "chapter_titles": ["C"]},
            ]
        }
    )
    outline = assemble_outline(
        seed,
        plan,
        [[instruction(1), instruction(2), instruction(3)], [instruction(4)]],
        scenes_per_chapter=2,
        target_words=100,
    )
    assert [(s.act, s.chapter, s.chapter_title) for s in outline.scenes] == [
        (1, 1, "A"),
        (1, 1, "A"),
        (1, 2, "B"),
        (2, 3, "C"),
    ]
    assert outline.chapter_titles() == {1: "A", 2: "B", 3: "C"}
    json_path, yaml_path = write_outline(outline, tmp_path)
    assert read_outline(json_path) == outline == read_outline(yaml_path)


def test_hand_edited_outline_errors_name_the_field(tmp_path):
    bad = tmp_path / "outline.yaml"
    bad.write_text(
        "version: 1\ntitle: T\nacts: [{index: 1, title: A}]\nscenes:\n- {index: 2, act: 1, chapter: 1, chapter_title: A, target_words: 5, instruction: {scene_goal: g, characters_present: [], emotional_beat: e, constraints: ''}}\n"
    )
    with pytest.raises(NovelcraftError, match="outline: .*numbered 1, 2"):
        read_outline(bad)


def test_scene_target_words():
    seed = StorySeed(title="T", premise="A premise long enough to pass.", target_words=3000)
    assert scene_target_words(seed, 10, 100, 500) == 300
    assert scene_target_words(seed, 2, 100, 500) == 500
    assert scene_target_words(StorySeed(title="T", premise="A premise long enough to pass."), 3, 100, 200) == 150

"""Pure parts of generation: seeds, the scene prompt shape, stop conditions, outline planning and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.chat_format import progress_percent, render_chatml, scene_messages, scene_prompt
from novelcraft.errors import NovelcraftError
from novelcraft.generate import GenerateRecipe, StorySeed, load_seed
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
from novelcraft.generate.scene import check_scene, repetition_ratio, retry_note, trim_to_sentence_end
from novelcraft.generate.seed import resolve_seed_paths
from novelcraft.models import Instruction
from novelcraft.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "data" / "seeds"


# -- seeds ---------------------------------------------------------------------------------------


def test_shipped_seeds_load():
    paths = resolve_seed_paths([SEEDS])
    assert len(paths) >= 2
    seeds = [load_seed(p) for p in paths]
    assert all(s.premise.strip() and s.title for s in seeds)
    assert any(s.world_context is not None for s in seeds) and any(s.world_context is None for s in seeds)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("title: X\npremis: a long enough premise for the check\n", "premis: unknown key"),
        ("title: X\n", "premise: Field required"),
        ("title: X\npremise: a long enough premise here\ntarget_scenes: 0\n", "target_scenes"),
        ("title: X\npremise: a long enough premise here\nworld_context: {tone_style: x}\n", "world_context.world_rules"),
        ("title: [unclosed\n", "invalid YAML at line"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_invalid_seed_names_file_and_field(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(NovelcraftError) as err:
        load_seed(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: seed: ") and needle in msg


def test_seed_json_schema_is_strict():
    schema = StorySeed.model_json_schema()
    assert schema["additionalProperties"] is False and "premise" in schema["required"]


# -- the scene prompt ------------------------------------------------------------------------------


def test_scene_prompt_is_the_training_shape():
    msgs = scene_prompt("SYSTEM", "# Novel World Context\nW", "opening", 2, 4, "# Scene Instruction\nI")
    expected = scene_messages("SYSTEM", "# Novel World Context\nW", "opening", progress_percent(2, 4), "# Scene Instruction\nI")
    assert msgs == [{"role": m.role, "content": m.content} for m in expected]
    assert "NOVEL PROGRESS: 25%" in msgs[1]["content"]
    assert render_chatml(msgs, add_generation_prompt=True).endswith("<|im_start|>assistant\n")
    noted = scene_prompt("SYSTEM", "W", "opening", 1, 4, "I", note="Note: longer.")
    assert noted[1]["content"] == expected_user("W", "opening", 0, "I") + "\n\nNote: longer."


def expected_user(wc, summary, progress, instruction):
    return scene_messages("S", wc, summary, progress, instruction)[1].content


# -- stop conditions -------------------------------------------------------------------------------

GOOD = " ".join(f"The keeper climbs stair {i} and counts the gears of wheel {i}." for i in range(10))


def test_good_scene_passes():
    c = check_scene(GOOD, "stop", min_words=30, max_repetition=0.35)
    assert c.ok and c.words == len(GOOD.split()) and not c.trimmed


def test_empty_short_and_repetitive_scenes_are_rejected():
    assert check_scene("  <|im_end|>", "stop", min_words=5, max_repetition=0.35).problem == "empty"
    short = check_scene("One line only.", "stop", min_words=5, max_repetition=0.35)
    assert short.problem == "too_short" and short.words == 3
    loop = check_scene("The bell rings over the water. " * 20, "stop", min_words=5, max_repetition=0.35)
    assert loop.problem == "repetition" and loop.repetition > 0.8


def test_cut_off_scene_is_trimmed_or_rejected():
    cut = GOOD + " And then the keeper turned towards the"
    c = check_scene(cut, "length", min_words=30, max_repetition=0.35)
    assert c.ok and c.trimmed and c.text == GOOD
    assert check_scene(cut, "length", min_words=30, max_repetition=0.35, trim_cut_off=False).problem == "cut_off"
    assert check_scene("no sentence end at all in this text", "length", min_words=3, max_repetition=0.35).problem == "cut_off"
    assert trim_to_sentence_end('He said "Go." And then') == 'He said "Go."'


def test_repetition_ratio_and_notes():
    assert repetition_ratio("a b c d e f g") == 0.0
    assert repetition_ratio("") == 0.0
    short = check_scene("Too short.", "stop", min_words=50, max_repetition=0.35)
    note = retry_note(short, min_words=50, target_words=120)
    assert "2 words" in note and "50 words" in note and "120" in note


# -- outline planning ------------------------------------------------------------------------------


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
    plan = ActPlan.model_validate({"acts": [
        {"title": "One", "summary": "s", "chapter_titles": ["A", "B"]},
        {"title": "Two", "summary": "s", "chapter_titles": ["C"]},
    ]})
    outline = assemble_outline(seed, plan, [[instruction(1), instruction(2), instruction(3)], [instruction(4)]],
                               scenes_per_chapter=2, target_words=100)
    assert [(s.act, s.chapter, s.chapter_title) for s in outline.scenes] == [(1, 1, "A"), (1, 1, "A"), (1, 2, "B"), (2, 3, "C")]
    assert outline.chapter_titles() == {1: "A", 2: "B", 3: "C"}
    json_path, yaml_path = write_outline(outline, tmp_path)
    assert read_outline(json_path) == outline == read_outline(yaml_path)


def test_hand_edited_outline_errors_name_the_field(tmp_path):
    bad = tmp_path / "outline.yaml"
    bad.write_text("version: 1\ntitle: T\nacts: [{index: 1, title: A}]\nscenes:\n- {index: 2, act: 1, chapter: 1, chapter_title: A, target_words: 5, instruction: {scene_goal: g, characters_present: [], emotional_beat: e, constraints: ''}}\n")
    with pytest.raises(NovelcraftError, match="outline: .*numbered 1, 2"):
        read_outline(bad)


def test_scene_target_words():
    seed = StorySeed(title="T", premise="A premise long enough to pass.", target_words=3000)
    assert scene_target_words(seed, 10, 100, 500) == 300
    assert scene_target_words(seed, 2, 100, 500) == 500
    assert scene_target_words(StorySeed(title="T", premise="A premise long enough to pass."), 3, 100, 200) == 150


# -- recipes ---------------------------------------------------------------------------------------


def test_shipped_generate_recipes_load():
    paths = sorted((ROOT / "recipes" / "generate").glob("*.yaml"))
    assert len(paths) >= 3
    kinds = {load_recipe(p).llm.backend for p in paths}
    assert kinds == {"transformers", "vllm", "openai"}


def test_recipe_rejects_identical_samples_and_bad_lengths():
    with pytest.raises(ValueError, match="samples_per_seed > 1 needs"):
        GenerateRecipe(name="x", seeds=["a"], samples_per_seed=2)
    GenerateRecipe(name="x", seeds=["a"], samples_per_seed=2, llm={"sampling": {"temperature": 0.7, "seed": None}})
    with pytest.raises(ValueError, match="min_words <= target_words_min"):
        GenerateRecipe(name="x", seeds=["a"], scenes={"min_words": 5000})
    with pytest.raises(ValueError, match="context_window"):
        GenerateRecipe(name="x", seeds=["a"], llm={"context_window": 2048})


def test_scene_text_cleaning_and_markdown_safety():
    from novelcraft.bench.novel import parse_markdown_novel
    from novelcraft.generate.output import markdown_safe
    from novelcraft.generate.scene import clean_scene_text

    assert clean_scene_text("# Chapter 3: Ash\n## Scene\n\nThe door opened.<|im_end|>junk") == "The door opened."
    text = "She wrote:\n# not a heading\n---\nThe end."
    md = "# T\n\n## Chapter 1: A\n\n" + markdown_safe(text) + "\n"
    novel = parse_markdown_novel(md)
    assert len(novel.scenes) == 1 and novel.scenes[0].chapter == 1


def test_epub_is_reproducible(tmp_path):
    from novelcraft.generate.output import write_epub

    md = "# Chapter 1: The Tide\n\nThe harbour woke.\n"
    a = write_epub(md, tmp_path / "a.epub", title="The Tide", author="A. Writer")
    b = write_epub(md, tmp_path / "b.epub", title="The Tide", author="A. Writer")
    c = write_epub(md + "\nMore.\n", tmp_path / "c.epub", title="The Tide", author="A. Writer")
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()

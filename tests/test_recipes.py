from pathlib import Path

import pytest
import yaml

from novelcraft.errors import RecipeError
from novelcraft.prep.recipe import PrepRecipe
from novelcraft.recipes import apply_overrides, dump_recipe, load_recipe, parse_override

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "recipes" / "prep" / "default.yaml"


def test_default_recipe_encodes_design_token_math():
    r = load_recipe(DEFAULT)
    assert isinstance(r, PrepRecipe)
    b = r.budgets
    assert (b.record.max_tokens, b.record.system, b.record.world_context, b.record.running_summary) == (
        4096,
        150,
        400,
        400,
    )
    assert (b.record.instruction, b.record.buffer) == (50, 50)
    assert (b.scene.target_min, b.scene.target_max, b.scene.hard_max) == (2000, 3000, 3000)
    assert (b.atomic.min_tokens, b.atomic.max_tokens, b.atomic.goldilocks_min, b.atomic.goldilocks_max) == (
        400,
        1000,
        600,
        800,
    )
    assert b.block.min_tokens == 75
    assert r.tokenizer.name == "Qwen/Qwen3-30B-A3B-Instruct-2507"
    assert r.version == 1 and r.kind == "prep"


def test_every_shipped_recipe_loads():
    for path in sorted((ROOT / "recipes").rglob("*.yaml")):
        load_recipe(path)


def test_overrides_are_typed_and_nested():
    r = load_recipe(
        DEFAULT,
        ["budgets.scene.target_max=2800", "budgets.scene.hard_max=2800", "name=other", "clean.keep_footnotes=false"],
    )
    assert r.budgets.scene.hard_max == 2800 and r.name == "other" and r.clean.keep_footnotes is False
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x"]) == {"a": {"b": 1, "c": "x"}}


def test_budget_that_cannot_fit_is_rejected_with_reason():
    with pytest.raises(RecipeError) as err:
        load_recipe(DEFAULT, ["budgets.record.world_context=500"])
    msg = str(err.value)
    assert "do not fit" in msg and "4150 > 4096" in msg and "default.yaml" in msg


@pytest.mark.parametrize(
    "override, needle",
    [
        ("budgets.scene.hard_mx=10", "budgets.scene.hard_mx: unknown key"),
        ("budgets.atomic.goldilocks_min=300", "goldilocks"),
        ("budgets.block.max_tokens=1200", "block.max_tokens"),
        ("budgets.scene.target_min=3500", "target_min"),
        ("tokenizer.method=guess", "tokenizer.method"),
    ],
)
def test_cross_field_and_unknown_keys(override, needle):
    with pytest.raises(RecipeError) as err:
        load_recipe(DEFAULT, [override])
    assert needle in str(err.value)


def test_bad_yaml_and_bad_header(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nkind: prep\nname: [unclosed\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: invalid YAML at line"):
        load_recipe(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("version: 7\nkind: prep\nname: x\nbooks: [a]\n")
    with pytest.raises(RecipeError, match="version 7 is not supported"):
        load_recipe(wrong)
    nokind = tmp_path / "nokind.yaml"
    nokind.write_text("version: 1\nname: x\n")
    with pytest.raises(RecipeError, match="kind must be one of"):
        load_recipe(nokind)
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(RecipeError, match="not of the form"):
        load_recipe(DEFAULT, ["novalue"])


def test_resolved_recipe_round_trips():
    r = load_recipe(DEFAULT, ["budgets.scene.target_max=2900", "budgets.scene.hard_max=2900"])
    again = PrepRecipe.model_validate(yaml.safe_load(dump_recipe(r)))
    assert again == r

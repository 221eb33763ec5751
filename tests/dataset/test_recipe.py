"""``novelcraft.dataset.recipe``: the compile recipe's checks, its shipped file and its persona."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.chat_format import default_system_prompt
from novelcraft.dataset import CompileRecipe
from novelcraft.errors import NovelcraftError, RecipeError
from novelcraft.recipes import load_recipe, recipe_from_dict
from novelcraft.validate import validate_file

ROOT = Path(__file__).resolve().parents[2]


def test_recipe_checks(tmp_path: Path) -> None:
    base = {"version": 1, "kind": "compile", "name": "x", "books": ["b"]}
    assert isinstance(recipe_from_dict(base), CompileRecipe)
    with pytest.raises(RecipeError, match="give system_prompt.text or system_prompt.file, not both"):
        recipe_from_dict({**base, "system_prompt": {"text": "a", "file": "b"}})
    with pytest.raises(RecipeError, match="split.seeds: unknown key"):
        recipe_from_dict({**base, "split": {"seeds": 3}})
    with pytest.raises(RecipeError, match="export.formats has duplicates"):
        recipe_from_dict({**base, "export": {"formats": ["jsonl", "jsonl"]}})
    with pytest.raises(RecipeError, match="split.validation_fraction"):
        recipe_from_dict({**base, "split": {"validation_fraction": 1.0}})
    with pytest.raises(RecipeError, match="on_over_budget"):
        recipe_from_dict({**base, "on_over_budget": "truncate"})


def test_default_recipe_file_loads() -> None:
    r = load_recipe(ROOT / "recipes" / "compile" / "default.yaml", ["split.seed=3"])
    assert isinstance(r, CompileRecipe)
    assert r.books == ["runs/sample/books"] and r.run_dir == Path("runs/datasets/sample") and r.split.seed == 3
    # the file spells out the defaults
    assert r == CompileRecipe(name="sample", books=["runs/sample/books"], split={"seed": 3})
    assert validate_file(ROOT / "recipes" / "compile" / "default.yaml") == []


def test_system_prompt_sources(tmp_path: Path, recipe) -> None:
    f = tmp_path / "persona.txt"
    f.write_text("\nYou write sea stories.\n", encoding="utf-8")
    assert recipe(system_prompt={"file": str(f)}).system_prompt.resolve() == "You write sea stories."
    assert CompileRecipe(name="x", books=["b"]).system_prompt.resolve() == default_system_prompt()
    with pytest.raises(NovelcraftError, match="system_prompt: cannot read the system prompt file"):
        recipe(system_prompt={"file": str(tmp_path / "missing.txt")}).system_prompt.resolve()

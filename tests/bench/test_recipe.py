"""``novelcraft.bench.recipe``: the shipped bench recipes and their checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.bench.recipe import BenchRecipe
from novelcraft.errors import RecipeError
from novelcraft.recipes import load_recipe

pytest.importorskip("numpy", reason="numpy is needed for embeddings and plots")


ROOT = Path(__file__).resolve().parents[2]


def test_bench_recipes_load():
    r = load_recipe(ROOT / "recipes" / "bench" / "default.yaml")
    assert isinstance(r, BenchRecipe) and r.baseline.source == "packaged" and r.bins == 10
    assert load_recipe(ROOT / "recipes" / "bench" / "human-baseline.yaml").baseline.source == "compute"
    with pytest.raises(RecipeError, match="unknown key"):
        load_recipe(ROOT / "recipes" / "bench" / "default.yaml", ["embedding.modle=tfidf"])
    with pytest.raises(RecipeError, match="baseline.file is required"):
        load_recipe(ROOT / "recipes" / "bench" / "default.yaml", ["baseline.source=file"])

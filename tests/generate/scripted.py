"""The scripted writer of the generation tests, importable by name (worker processes unpickle it)."""

from __future__ import annotations

import json
import re

from novelcraft.llm.types import LLMRequest

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


def refuse(req: LLMRequest):
    """A responder for runs that must make no call."""
    raise AssertionError(f"unexpected call {req.key}")

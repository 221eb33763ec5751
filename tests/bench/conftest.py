"""A short generated Markdown novel with planted faults, for the benchmark tests."""

from __future__ import annotations

import pytest

from novelcraft.models import RunningSummary


def _summary(end: str, chars: str) -> str:
    return RunningSummary(
        scene_end_state=end,
        emotional_beat="unease",
        immediate_tension="The light is still out.",
        global_events=f"{chars} came to the island; the lighthouse went dark.",
        unresolved_threads="Who put out the light?",
        world_state="Storm season, no ferry.",
        active_characters=chars,
        global_shift="The island is cut off.",
    ).render()


SLOPPY = "It was a testament to her will, a tapestry of fear, and it sent shivers down her spine. "


@pytest.fixture(scope="session")
def generated_markdown():
    """``generated_markdown()``: a six-scene Markdown novel with planted faults (a renamed character, a copied
    scene, cliches)."""

    def generated_markdown() -> str:
        """Six scenes: goals, targets and summaries; Anna is renamed Anne halfway; scene 5 copies scene 2."""
        scenes = [
            (
                "Anna arrives on the island and meets Tobias at the pier.",
                "Anna stepped off the ferry onto the pier where Tobias waited with a lantern. Anna asked about the lighthouse. Tobias said it had been dark for a week and that nobody on the island would talk about it. They walked up the cliff path in the wind.",
            ),
            (
                "Anna and Tobias climb the lighthouse.",
                "The stairs of the lighthouse were wet. Anna counted them aloud while Tobias held the lantern. At the top the great lamp was cold and the glass was cracked, as if someone had struck it with a hammer. Anna touched the crack. "
                + SLOPPY,
            ),
            (
                "Anna finds the keeper's logbook.",
                "In the keeper's room Anna found a logbook with the last page torn out. Tobias read the dates: the keeper had written every night for forty years and then stopped. Anna put the book in her coat. "
                + SLOPPY,
            ),
            (
                "Anne questions the villagers.",
                "Anne went down to the village at noon. The baker would not meet her eyes, and the priest said the keeper had gone to the mainland. Anne knew the ferry had not sailed. Tobias waited outside the church. "
                + SLOPPY,
            ),
            (
                "Anne returns to the lighthouse at night.",
                "The stairs of the lighthouse were wet. Anne counted them aloud while Tobias held the lantern. At the top the great lamp was cold and the glass was cracked, as if someone had struck it with a hammer. Anne touched the crack. "
                + SLOPPY,
            ),
            (
                "Anne lights the lamp.",
                "Anne poured the last oil into the lamp and struck a match. The light turned over the sea, and far out a boat answered with three flashes. Tobias laughed for the first time since she had come. "
                + SLOPPY,
            ),
        ]
        parts = ["# The Dark Light", ""]
        for i, (goal, text) in enumerate(scenes, 1):
            if i in (1, 4):
                parts += [f"# Chapter {1 if i == 1 else 2}", ""]
            elif i > 1:
                parts += ["* * *", ""]
            who = "Anna; Tobias" if i <= 3 else "Anne; Tobias"
            parts += [
                f"<!-- goal: {goal} -->",
                "<!-- target_words: 50 -->",
                f"<!-- summary: {_summary('End of scene ' + str(i) + '.', who)} -->",
                text,
                "",
            ]
        return "\n".join(parts)

    return generated_markdown

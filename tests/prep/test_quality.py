"""``novelcraft.prep.quality``: gold the books carry, and the scores of segmentation, summaries, instructions."""

from __future__ import annotations

from novelcraft.models import Block, Chapter, RunningSummary
from novelcraft.prep.quality import (
    boundary_scores,
    break_starts,
    gold_windows,
    instruction_adherence,
    names_in,
    summary_faithfulness,
)


def block(i: int, text: str) -> Block:
    return Block(index=i, text=text, tokens=len(text.split()), joiner="\n\n", paragraphs=text.count("\n\n") + 1)


def chapter(index: int, texts: list[str]) -> Chapter:
    blocks = [block(i, t) for i, t in enumerate(texts)]
    text = "\n\n".join(t for t in texts)
    return Chapter(
        index=index,
        heading=f"# Chapter {index}",
        source_heading=f"CHAPTER {index}",
        text=text,
        word_count=len(text.split()),
        tokens=len(text.split()),
        blocks=blocks,
    )


def test_gold_from_scene_breaks_and_joined_chapters() -> None:
    one = chapter(1, ["Avis woke.", "She ran.\n\n* * *", "Years later, Ernest came.", "He left."])
    two = chapter(2, ["The Bishop prayed.", "⁂\n\nDawn broke.", "Nothing more."])
    assert break_starts(one.blocks) == [2]  # the break ends block 1: the scene starts at block 2
    assert break_starts(two.blocks) == [1]  # inside block 1: the new scene starts in it
    windows = gold_windows([one, two])
    assert [(w.name, w.gold) for w in windows] == [
        ("chapter 1 blocks 0-3", (2,)),
        ("chapter 2 blocks 0-2", (1,)),
        ("chapters 1+2", (2, 4, 5)),
    ]
    # windows stay within what one segmentation call sees: the end of chapter 1, the start of chapter 2
    small = gold_windows([one, two], max_tokens=12)
    joined = [w for w in small if w.kind == "joined chapters"][0]
    assert sum(b.tokens for b in joined.blocks) <= 12 and len(joined.gold) >= 1


def test_boundary_scores_with_tolerance() -> None:
    s = boundary_scores([([0, 2, 6], [3, 9]), ([0, 4], [4])], tolerance=1)
    assert (s.predicted, s.gold, s.matched_predicted, s.matched_gold) == (3, 3, 2, 2)
    assert round(s.precision, 2) == 0.67 and round(s.recall, 2) == 0.67 and round(s.f1, 2) == 0.67
    assert boundary_scores([([0], [5])]).f1 == 0.0


def summary(active: str, events: str = "Events happen to people.") -> RunningSummary:
    return RunningSummary(
        scene_end_state="The scene ends at night.",
        emotional_beat="calm",
        immediate_tension="what next",
        global_events=events,
        unresolved_threads="open",
        world_state="tense",
        active_characters=active,
        global_shift="rising",
    )


def test_summary_faithfulness_counts_invented_and_kept_names() -> None:
    # (a name opening a sentence is not counted: any word may open one)
    scenes = ["At dinner Avis met Ernest, who spoke of the Oligarchy.", "Later the Bishop called on Avis."]
    good = [summary("Avis and Ernest"), summary("Avis, Ernest and the Bishop")]
    bad = [summary("John Smith and Mike Brown"), summary("John Smith")]
    f_good, f_bad = summary_faithfulness(scenes, good), summary_faithfulness(scenes, bad)
    assert f_good.name_precision == 1.0 and f_good.name_recall > 0.5 and f_good.within_budget == 1.0
    assert f_bad.name_precision == 0.0 and f_bad.name_recall == 0.0
    silent = summary_faithfulness(scenes, [summary("the narrator", "things happen"), summary("no one")])
    assert (silent.name_precision, silent.name_recall, silent.naming) == (None, 0.0, 0)
    assert (f_good.naming, f_bad.naming) == (2, 2)
    assert "Avis" in names_in("Then Avis Everhard spoke.") and "Then" not in names_in("Then Avis Everhard spoke.")


def test_instruction_adherence_ranks_the_own_scene_first() -> None:
    vocab = ["storm", "ship", "dinner", "wine", "garden", "rose"]

    def embed(texts):
        rows = []
        for t in texts:
            v = [float(t.lower().count(w)) for w in vocab]
            n = sum(x * x for x in v) ** 0.5 or 1.0
            rows.append([x / n for x in v])
        return rows

    scenes = ["The storm broke over the ship.", "Dinner and wine at the manor.", "A rose in the garden."]
    own = ["Write the storm at sea on the ship.", "Write the dinner with wine.", "Write the garden and its rose."]
    good = instruction_adherence(own, scenes, embed)
    assert good["top1"] == 1.0 and good["mean_rank"] == 1.0 and good["margin"] > 0.5
    shuffled = instruction_adherence(own[1:] + own[:1], scenes, embed)
    assert shuffled["top1"] == 0.0 and shuffled["margin"] < 0

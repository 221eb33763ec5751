"""``novelcraft.dataset.records``: sequences, summaries and progress, missing fields, budgets, a real book."""

from __future__ import annotations

import json

import pytest

from novelcraft.chat_format import DEFAULT_OPENING_SUMMARY, default_system_prompt, render_chatml
from novelcraft.dataset import compile_books
from novelcraft.errors import NovelcraftError
from novelcraft.models import Book
from novelcraft.recipes import Budgets

SYSTEM = "You are a novelist."  # the persona of the conftest's recipe()


def small_budgets(max_tokens: int) -> Budgets:
    return Budgets.model_validate(
        {
            "record": {
                "max_tokens": max_tokens,
                "system": 0,
                "world_context": 0,
                "running_summary": 0,
                "instruction": 0,
                "buffer": 0,
            },
            "scene": {"target_min": 10, "target_max": 20, "hard_max": 30},
            "atomic": {"min_tokens": 1, "goldilocks_min": 2, "goldilocks_max": 3, "max_tokens": 4},
            "block": {"min_tokens": 1, "max_tokens": 2},
        }
    )


def test_summary_of_the_previous_scene_and_progress(counter, tiny_book, recipe, section) -> None:
    book = tiny_book(narrative=4, reference=2)
    result = compile_books([book], recipe(reference_scenes="keep", split={"validation_fraction": 0}), counter)
    assert result.validation == []
    recs = result.train
    assert [r.meta.scene_id for r in recs] == [1, 2, 3, 4, 5, 6]
    assert [r.meta.progress_percent for r in recs] == [0, 25, 50, 75, 0, 50]
    assert [r.meta.is_reference for r in recs] == [False] * 4 + [True] * 2
    assert [(r.meta.position, r.meta.sequence_length) for r in recs] == [(1, 4), (2, 4), (3, 4), (4, 4), (1, 2), (2, 2)]
    summaries = [section(r.record.messages[1].content, "running_summary") for r in recs]
    assert summaries[0] == f"NOVEL PROGRESS: 0%\n\n{DEFAULT_OPENING_SUMMARY}"
    assert summaries[1] == "NOVEL PROGRESS: 25%\n\n# Running Summary\n\nafter scene 1"
    assert summaries[3].endswith("after scene 3")
    # the reference sequence opens anew and never sees narrative summaries
    assert summaries[4] == f"NOVEL PROGRESS: 0%\n\n{DEFAULT_OPENING_SUMMARY}"
    assert summaries[5].endswith("after scene 5")
    for r, scene in zip(recs, book.scenes):
        assert r.record.messages[0].content == SYSTEM
        assert r.record.messages[2].content == scene.text
        assert section(r.record.messages[1].content, "scene_instruction") == scene.instruction
        assert "is_reference" not in json.dumps(r.record.model_dump())  # the flag lives in the sidecar only
        assert r.meta.record_id == f"tiny_book/{scene.scene_id}"


def test_reference_scenes_dropped_by_default(counter, recipe, tiny_book) -> None:
    result = compile_books([tiny_book(narrative=3, reference=2)], recipe(split={"validation_fraction": 0}), counter)
    assert [r.meta.scene_id for r in result.train] == [1, 2, 3]
    assert result.stats.reference_scenes_dropped == 2 and result.stats.dropped == []
    assert "2 reference (recipe)" in result.summary()


def test_custom_opening_summary(counter, recipe, section, tiny_book) -> None:
    r = recipe(opening_summary="Before the story: a quiet town.", split={"validation_fraction": 0})
    first = compile_books([tiny_book()], r, counter).train[0]
    assert section(first.record.messages[1].content, "running_summary").endswith("Before the story: a quiet town.")


def test_missing_fields_fail_names_book_and_scene(counter, tiny_book, recipe) -> None:
    book = tiny_book(narrative=4, reference=0)
    book.scenes[2].instruction = None
    with pytest.raises(NovelcraftError) as exc:
        compile_books([book], recipe(), counter, sources=["books/tiny/07_book.json"])
    msg = str(exc.value)
    assert msg.startswith("books/tiny/07_book.json: compile: book tiny_book: scene 3: missing instruction")
    assert "on_missing=drop" in msg

    book = tiny_book(narrative=4, reference=0)
    book.scenes[1].running_summary = "  "
    with pytest.raises(NovelcraftError, match=r"scene 3: missing running_summary of scene 2 \(the previous scene\)"):
        compile_books([book], recipe(), counter)

    book = tiny_book(narrative=2, reference=0)
    book.meta.world_context = None
    with pytest.raises(NovelcraftError, match=r"scene 1: missing meta.world_context \(and 1 more scene\)"):
        compile_books([book], recipe(), counter)


def test_missing_fields_drop_is_reported(counter, tiny_book, recipe) -> None:
    book = tiny_book(narrative=5, reference=0)
    book.scenes[1].running_summary = None  # scene 3 cannot get its summary
    book.scenes[3].instruction = None  # scene 4 has no instruction
    book.scenes[4].running_summary = None  # the last summary is never used: harmless
    result = compile_books([book], recipe(on_missing="drop", split={"validation_fraction": 0}), counter)
    assert [r.meta.scene_id for r in result.train] == [1, 2, 5]
    assert [r.meta.progress_percent for r in result.train] == [0, 20, 80]  # positions keep the whole sequence
    assert [(d.scene_id, d.reason, d.detail) for d in result.stats.dropped] == [
        (3, "missing", "missing running_summary of scene 2 (the previous scene)"),
        (4, "missing", "missing instruction"),
    ]
    assert result.stats.books[0].dropped == 2
    assert "dropped scenes: 2 missing" in result.summary()


def test_over_budget_drop_and_fail(counter, tiny_book, recipe) -> None:
    book = tiny_book(narrative=3, reference=0, words=20)
    book.scenes[1].text = "A much longer scene. " + " ".join(f"word{j}" for j in range(300))
    probe = compile_books([book], recipe(split={"validation_fraction": 0}), counter).train
    sizes = [r.meta.tokens for r in probe]
    # every count is the exact count of the record rendered with the chat template
    assert sizes == [counter.count(render_chatml(r.record.messages)) for r in probe]
    limit = max(sizes[0], sizes[2], 256)
    assert sizes[1] > limit
    r = recipe(budgets=small_budgets(limit).model_dump(), split={"validation_fraction": 0})
    result = compile_books([book], r, counter)
    assert [x.meta.scene_id for x in result.train] == [1, 3]  # a record of exactly max_tokens is kept
    (dropped,) = result.stats.dropped
    assert (dropped.scene_id, dropped.reason) == (2, "over_budget")
    assert dropped.detail.startswith(f"{sizes[1]} tokens as ChatML, budget is {limit} (budgets.record.max_tokens)")
    assert result.stats.histogram[-1] == (f"> {limit} (dropped)", 1)

    r_fail = recipe(budgets=small_budgets(limit).model_dump(), on_over_budget="fail")
    with pytest.raises(NovelcraftError, match=r"budget: book tiny_book: scene 2: \d+ tokens as ChatML"):
        compile_books([book], r_fail, counter)


def test_duplicate_book_ids_are_refused(counter, recipe, tiny_book) -> None:
    with pytest.raises(NovelcraftError, match="two books have book_id 'tiny_book' \\(a.json and b.json\\)"):
        compile_books([tiny_book(), tiny_book()], recipe(), counter, sources=["a.json", "b.json"])


def test_real_book_with_real_tokenizer(alice: Book, counter, recipe) -> None:
    r = recipe(system_prompt={}, split={"validation_fraction": 0})
    result = compile_books([alice], r, counter)
    narrative = [s for s in alice.scenes if not s.is_reference]
    assert [x.meta.scene_id for x in result.train] == [s.scene_id for s in narrative]
    for x in result.train:
        total = counter.count(render_chatml(x.record.messages))
        assert x.meta.tokens == total <= 4096
        assert x.meta.scene_tokens == counter.count(x.record.messages[2].content)
        assert x.record.messages[0].content == default_system_prompt()
    stats = result.stats
    assert stats.tokens["record"].max <= 4096 and stats.tokens["record"].count == len(narrative)
    assert stats.tokens["world_context"].max == counter.count(alice.meta.world_context)
    assert stats.narrative_context_ratio == round(stats.tokens["scene"].total / stats.tokens["context"].total, 3)
    assert sum(n for _, n in stats.histogram) == len(narrative)

"""Novel input: Markdown parsing, Book JSON and Novel JSON loading, errors."""

from __future__ import annotations

import json

import pytest

from novelcraft.bench.novel import Novel, NovelScene, load_novel, novel_from_book, parse_markdown_novel
from novelcraft.errors import NovelcraftError
from novelcraft.models import Book, BookMeta, Scene

MD = """# The Salt Road

# Chapter 1: Harbour

<!-- goal: Mara arrives at the harbour and meets Tobias. -->
<!-- target_words: 40 -->
Mara stepped off the cart at dawn.

Tobias was already waiting.

* * *

<!-- summary: - SCENE END STATE: They walk to the pier. -->
They walked to the pier together.

## Chapter II

Night fell on the island.
---
The lighthouse stayed dark.
"""


def test_parse_markdown_novel_chapters_breaks_and_metadata():
    nv = parse_markdown_novel(MD)
    assert nv.title == "The Salt Road" and nv.source == "generated"
    assert [s.chapter for s in nv.scenes] == [1, 1, 2, 2]
    assert nv.scenes[0].chapter_title == "Harbour"
    assert nv.scenes[0].goal == "Mara arrives at the harbour and meets Tobias."
    assert nv.scenes[0].target_words == 40
    assert nv.scenes[0].text == "Mara stepped off the cart at dawn.\n\nTobias was already waiting."
    assert nv.scenes[1].summary == "- SCENE END STATE: They walk to the pier."
    assert nv.scenes[1].text == "They walked to the pier together."
    assert [s.index for s in nv.scenes] == [1, 2, 3, 4]
    assert nv.word_count == sum(len(s.text.split()) for s in nv.scenes)


def test_parse_markdown_without_headings_is_one_scene():
    nv = parse_markdown_novel("Just one scene of text.\n", title="T")
    assert len(nv.scenes) == 1 and nv.scenes[0].chapter is None


def test_parse_markdown_rejects_empty_and_bad_target():
    with pytest.raises(NovelcraftError, match="no scene text"):
        parse_markdown_novel("# Chapter 1\n\n***\n")
    with pytest.raises(NovelcraftError, match="target_words must be an integer"):
        parse_markdown_novel("<!-- target_words: many -->\nText.")


def _book() -> Book:
    meta = BookMeta(book_id="t", title="T", author="A", word_count=6, total_chapters=1, total_scenes=2)
    return Book(
        meta=meta,
        scenes=[
            Scene(scene_id=1, chapter_index=0, text="Preface text.", is_reference=True),
            Scene(
                scene_id=2,
                chapter_index=1,
                chapter_title="One",
                text="# Chapter 1: One\n\nStory text here.",
                instruction="goal",
                running_summary="sum",
            ),
        ],
    )


def test_novel_from_book_keeps_narrative_scenes_without_heading():
    nv = novel_from_book(_book())
    assert nv.source == "human" and len(nv.scenes) == 1
    assert nv.scenes[0].text == "Story text here." and nv.scenes[0].goal == "goal" and nv.scenes[0].summary == "sum"


def test_load_novel_by_file_type(tmp_path):
    (tmp_path / "n.md").write_text(MD, encoding="utf-8")
    assert len(load_novel(tmp_path / "n.md").scenes) == 4
    (tmp_path / "book.json").write_text(_book().model_dump_json(), encoding="utf-8")
    assert load_novel(tmp_path / "book.json").source == "human"
    nv = Novel(title="X", scenes=[NovelScene(index=1, text="Hello there.")])
    (tmp_path / "novel.json").write_text(nv.model_dump_json(), encoding="utf-8")
    loaded = load_novel(tmp_path / "novel.json")
    assert loaded.title == "X" and loaded.path == str(tmp_path / "novel.json")


def test_load_novel_errors_name_the_file(tmp_path):
    with pytest.raises(NovelcraftError, match="no such file"):
        load_novel(tmp_path / "missing.md")
    (tmp_path / "bad.json").write_text(json.dumps({"title": "x"}), encoding="utf-8")
    with pytest.raises(NovelcraftError, match="neither a Book JSON nor a Novel JSON") as e:
        load_novel(tmp_path / "bad.json")
    assert str(tmp_path / "bad.json") in str(e.value)
    (tmp_path / "n.docx").write_text("x", encoding="utf-8")
    with pytest.raises(NovelcraftError, match="unsupported"):
        load_novel(tmp_path / "n.docx")

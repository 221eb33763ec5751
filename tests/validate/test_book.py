"""``novelcraft.validate.book``: Book JSON, scenes and single LLM answers, with token budgets."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from novelcraft.recipes import Budgets
from novelcraft.validate import detect_kind, has_errors, validate_file

PEER_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "lora-novel-craft"


PEER_STEM = "Jack_London-The_Iron_Heel"


needs_peer = pytest.mark.skipif(
    not PEER_DIR.is_dir(), reason=f"peer data set not present at {PEER_DIR} (../shared beside the checkout)"
)


def test_valid_book_has_no_issues(tmp_path: Path, counter, book, write_json, scene) -> None:
    data = book([scene(1), scene(2), scene(3, chapter=2)], world_context="# Novel World Context\n\nGrim.")
    path = write_json(tmp_path / "book.json", data)
    assert detect_kind(path, data) == "book"
    assert validate_file(path, counter=counter) == []


def test_duplicate_and_non_increasing_scene_ids(tmp_path: Path, book, reasons, write_json, scene) -> None:
    data = book([scene(1), scene(2), scene(2, "Another text."), scene(5), scene(4)])
    issues = validate_file(write_json(tmp_path / "book.json", data))
    got = {(i.record, i.field, i.reason) for i in issues}
    assert got == {
        ("scene 2", "scene_id", "duplicate scene_id 2 (scenes[1] and scenes[2])"),
        ("scene 4", "scene_id", "scene_id 4 follows scene_id 5; ids must increase"),
    }, reasons(issues)


def test_declared_counts_and_duplicate_text(tmp_path: Path, book, reasons, write_json, scene) -> None:
    data = book([scene(1, chapter=0, is_reference=True), scene(2, "Same words."), scene(3, "Same words.")])
    data["meta"]["total_scenes"] = 2
    data["meta"]["total_chapters"] = 3
    data["chapters"] = [
        {
            "index": 1,
            "heading": "# Chapter 1",
            "source_heading": "I",
            "text": "# Chapter 1\n\nx",
            "word_count": 1,
            "tokens": 5,
        }
    ]
    issues = validate_file(write_json(tmp_path / "book.json", data))
    got = {(i.record, i.field, i.reason) for i in issues}
    assert got == {
        ("meta", "total_scenes", "total_scenes is 2 but the file has 3 scenes (2 narrative + 1 reference scene)"),
        ("meta", "total_chapters", "total_chapters is 3 but the file has 1 chapters"),
        ("scene 3", "text", "duplicate scene: same text as scene 2"),
    }, reasons(issues)


def test_book_schema_errors_are_mapped_to_scene_and_field(tmp_path: Path, book, reasons, write_json, scene) -> None:
    data = book([scene(1), scene(2), scene(3)])
    del data["scenes"][1]["chapter_index"]
    data["scenes"][2]["text"] = " \n"
    data["scenes"][2]["mood"] = "dark"
    data["meta"]["book_id"] = "Bad Id"
    issues = validate_file(write_json(tmp_path / "book.json", data))
    got = {(i.record, i.field) for i in issues}
    expected = {("scene 2", "chapter_index"), ("scene 3", "mood"), ("scene 3", "text"), ("meta", "book_id")}
    assert got == expected, reasons(issues)


def test_strict_json_types(tmp_path: Path, book, reasons, write_json, scene) -> None:
    data = book([scene(1)])
    data["scenes"][0]["scene_id"] = "1"
    issues = validate_file(write_json(tmp_path / "book.json", data))
    assert [(i.record, i.field) for i in issues] == [("scenes[0]", "scene_id")], reasons(issues)


def test_book_token_budgets(tmp_path: Path, counter, book, write_json, reasons, scene) -> None:
    long_text = " ".join(["word"] * 3100)
    data = book(
        [
            scene(1, long_text, running_summary=" ".join(["word"] * 450), instruction=" ".join(["word"] * 60)),
            scene(2, instruction="Short instruction."),
        ],
        world_context=" ".join(["word"] * 420),
    )
    path = write_json(tmp_path / "book.json", data)
    assert validate_file(path) == []
    issues = validate_file(path, counter=counter)
    got = {(i.record, i.field, i.severity) for i in issues}
    assert got == {
        ("meta", "world_context", "error"),
        ("scene 1", "text", "error"),
        ("scene 1", "running_summary", "error"),
        ("scene 1", "instruction", "warning"),
    }, reasons(issues)
    text_issue = next(i for i in issues if i.field == "text")
    assert text_issue.reason == f"text is {counter.count(long_text)} tokens, budget is 3000 (budgets.scene.hard_max)"
    assert "warning: instruction is 60 tokens" in next(i for i in issues if i.field == "instruction").format()
    assert not has_errors([i for i in issues if i.severity == "warning"])


def test_world_context_object_budget(tmp_path: Path, counter, write_json) -> None:
    fields = ["tone_style", "world_rules", "protagonist_conditions", "factions", "locations", "narrative_engine"]
    data = {f: "dark and grim " * 10 for f in fields}
    path = write_json(tmp_path / "wc.json", data)
    assert detect_kind(path, data) == "world_context"
    assert validate_file(path, counter=counter) == []
    tiny = Budgets().model_copy(deep=True)
    tiny.record.world_context = 10
    issues = validate_file(path, counter=counter, budgets=tiny)
    assert len(issues) == 1 and "rendered world_context is" in issues[0].reason


@needs_peer
def test_peer_data_set_copies_catch_injected_faults(tmp_path: Path, reasons, write_json) -> None:
    data = json.loads((PEER_DIR / f"json_sum_{PEER_STEM}.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["scenes"][10]["scene_id"] = broken["scenes"][9]["scene_id"]
    broken["scenes"][20]["text"] = broken["scenes"][19]["text"]
    issues = validate_file(write_json(tmp_path / "sum.json", broken))
    kinds = {(i.field, i.reason.split(" ")[0]) for i in issues}
    assert ("scene_id", "duplicate") in kinds and ("text", "duplicate") in kinds, reasons(issues)

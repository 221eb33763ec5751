"""``novelcraft.validate``: broken inline files, token budgets with the real tokenizer, peer data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from novelcraft.recipes import Budgets
from novelcraft.tokens import load_token_counter
from novelcraft.validate import (
    ValidationIssue,
    detect_kind,
    has_errors,
    summarize,
    validate_file,
    validate_paths,
)

HERE = Path(__file__).resolve().parents[1]
PEER_SAMPLE = HERE / "data" / "peer_sample.jsonl"
PEER_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "lora-novel-craft"
PEER_STEM = "Jack_London-The_Iron_Heel"
needs_peer = pytest.mark.skipif(
    not PEER_DIR.is_dir(), reason=f"peer data set not present at {PEER_DIR} (../shared beside the checkout)"
)


@pytest.fixture(scope="module")
def counter():
    return load_token_counter()


# --------------------------------------------------------------------------- builders


USER_TURN = (
    "<world_context>\nA grim world.\n</world_context>\n"
    "<running_summary>\nNOVEL PROGRESS: 0%\n\nNothing has happened yet.\n</running_summary>\n"
    "<scene_instruction>\nWrite the scene.\n</scene_instruction>"
)


def record(answer: str = "The scene text.", *, user: str = USER_TURN) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You are a novelist."},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def scene(sid: int, text: str | None = None, chapter: int = 1, **extra: Any) -> dict[str, Any]:
    return {"scene_id": sid, "chapter_index": chapter, "text": text or f"Scene number {sid} happens here.", **extra}


def book(scenes: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    m = {
        "book_id": "sample_book",
        "title": "Sample",
        "author": "Anon",
        "word_count": 100,
        "total_chapters": 1,
        "total_scenes": len(scenes),
    }
    m.update(meta)
    return {"meta": m, "chapters": [], "scenes": scenes}


def tight_budgets(max_tokens: int) -> Budgets:
    """Budgets whose record limit is ``max_tokens`` (the other limits shrunk so that they fit)."""
    return Budgets.model_validate(
        {
            "record": {"max_tokens": max_tokens, "system": 0, "world_context": 0, "running_summary": 0,
                       "instruction": 0, "buffer": 0},
            "scene": {"target_min": 10, "target_max": 20, "hard_max": 30},
            "atomic": {"min_tokens": 1, "goldilocks_min": 2, "goldilocks_max": 3, "max_tokens": 4},
            "block": {"min_tokens": 1, "max_tokens": 2},
        }
    )


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def reasons(issues: list[ValidationIssue]) -> str:
    return "\n".join(i.format() for i in issues)


# --------------------------------------------------------------------------- training JSONL


def test_valid_training_file_has_no_issues(tmp_path: Path, counter) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [record("First scene."), record("Second scene.")])
    assert validate_file(path) == []
    assert validate_file(path, counter=counter) == []


def test_invalid_json_line_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [record("a"), '{"messages": [', record("b")])
    issues = validate_file(path)
    assert len(issues) == 1, reasons(issues)
    issue = issues[0]
    assert issue.record == "record 2" and issue.severity == "error"
    assert "invalid JSON on line 2, column" in issue.reason
    assert issue.format().startswith(f"{path}: record 2: invalid JSON on line 2")


def test_wrong_role_order(tmp_path: Path) -> None:
    bad = record("Another scene.")
    bad["messages"] = [bad["messages"][1], bad["messages"][0], bad["messages"][2]]
    path = write_jsonl(tmp_path / "train.jsonl", [record(), bad])
    issues = validate_file(path)
    assert len(issues) == 1, reasons(issues)
    assert issues[0].record == "record 2" and issues[0].field == "messages"
    assert "got user, system, assistant" in issues[0].reason


def test_missing_message_is_a_role_error_not_noise(tmp_path: Path) -> None:
    bad = record()
    del bad["messages"][0]
    issues = validate_file(write_jsonl(tmp_path / "train.jsonl", [bad]))
    assert [i.field for i in issues] == ["messages"], reasons(issues)
    assert "got user, assistant" in issues[0].reason


def test_missing_field_and_unknown_field(tmp_path: Path) -> None:
    bad = record()
    del bad["messages"][2]["content"]
    bad["messages"][1]["name"] = "x"
    issues = validate_file(write_jsonl(tmp_path / "train.jsonl", [bad]))
    got = {(i.record, i.field, i.reason) for i in issues}
    assert ("record 1", "messages.2.content", "required field is missing") in got, reasons(issues)
    assert ("record 1", "messages.1.name", "unknown field (not in the schema)") in got
    line = next(i for i in issues if i.field == "messages.2.content").format()
    assert line == f"{tmp_path / 'train.jsonl'}: record 1: field messages.2.content: required field is missing"


def test_empty_and_blank_content(tmp_path: Path) -> None:
    empty, blank = record(), record()
    empty["messages"][1]["content"] = ""
    blank["messages"][2]["content"] = "  \n "
    issues = validate_file(write_jsonl(tmp_path / "train.jsonl", [empty, blank]))
    got = {(i.record, i.field, i.reason) for i in issues}
    assert got == {
        ("record 1", "messages.1.content", "empty string"),
        ("record 2", "messages.2.content", "content is only whitespace"),
    }, reasons(issues)


def test_duplicate_training_records(tmp_path: Path) -> None:
    changed = USER_TURN.replace("Write the scene.", "Write another scene.")
    path = write_jsonl(
        tmp_path / "train.jsonl", [record("same"), record("other"), record("same", user=changed), record("other")]
    )
    issues = validate_file(path)
    got = [(i.record, i.reason, i.severity) for i in issues]
    assert got == [
        ("record 3", "duplicate record: same assistant content as record 1", "error"),
        ("record 4", "duplicate record: same messages as record 2", "error"),
    ], reasons(issues)


def test_over_budget_record_with_real_tokenizer(tmp_path: Path, counter) -> None:
    user = (
        "<world_context>\nA grim world.\n</world_context>\n<running_summary>\nNOVEL PROGRESS: 50%\n\nSo far.\n"
        "</running_summary>\n<instruction>\nWrite it.\n</instruction>"
    )
    long_answer = " ".join(["word"] * 4500)
    path = write_jsonl(tmp_path / "train.jsonl", [record("short scene", user=user), record(long_answer, user=user)])
    assert validate_file(path) == []  # no counter: no budget check
    issues = validate_file(path, counter=counter)
    assert len(issues) == 1, reasons(issues)
    issue = issues[0]
    assert issue.record == "record 2" and issue.severity == "error"
    messages = record(long_answer, user=user)["messages"]
    total = counter.count("".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages))
    assert issue.reason.startswith(f"{total} tokens as ChatML, budget is 4096 (budgets.record.max_tokens)")
    assert f"assistant {counter.count(long_answer)}" in issue.reason
    assert "user " in issue.reason and "(world_context " in issue.reason and "instruction " in issue.reason
    # a custom budget is honoured
    assert validate_file(path, counter=counter, budgets=tight_budgets(total + 1)) == []
    assert len(validate_file(path, counter=counter, budgets=tight_budgets(256))) == 1


def test_peer_sample_is_valid_foreign_input(counter) -> None:
    """Five records in the peer's JSONL layout (its generated prompt/summary prose replaced by filler)."""
    assert PEER_SAMPLE.is_file()
    assert detect_kind(PEER_SAMPLE, None) == "training"
    issues = validate_file(PEER_SAMPLE, counter=counter)
    assert issues == [], reasons(issues)
    rows = [json.loads(line) for line in PEER_SAMPLE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5
    # over a tight total budget the report names every section of the peer's user message
    over = validate_file(PEER_SAMPLE, counter=counter, budgets=tight_budgets(2000))
    assert len(over) == 5
    assert all("(world_context " in i.reason and "running_summary " in i.reason for i in over)


# --------------------------------------------------------------------------- books


def test_valid_book_has_no_issues(tmp_path: Path, counter) -> None:
    data = book([scene(1), scene(2), scene(3, chapter=2)], world_context="# Novel World Context\n\nGrim.")
    path = write_json(tmp_path / "book.json", data)
    assert detect_kind(path, data) == "book"
    assert validate_file(path, counter=counter) == []


def test_duplicate_and_non_increasing_scene_ids(tmp_path: Path) -> None:
    data = book([scene(1), scene(2), scene(2, "Another text."), scene(5), scene(4)])
    issues = validate_file(write_json(tmp_path / "book.json", data))
    got = {(i.record, i.field, i.reason) for i in issues}
    assert got == {
        ("scene 2", "scene_id", "duplicate scene_id 2 (scenes[1] and scenes[2])"),
        ("scene 4", "scene_id", "scene_id 4 follows scene_id 5; ids must increase"),
    }, reasons(issues)


def test_declared_counts_and_duplicate_text(tmp_path: Path) -> None:
    data = book([scene(1, chapter=0, is_reference=True), scene(2, "Same words."), scene(3, "Same words.")])
    data["meta"]["total_scenes"] = 2
    data["meta"]["total_chapters"] = 3
    data["chapters"] = [
        {"index": 1, "heading": "# Chapter 1", "source_heading": "I", "text": "# Chapter 1\n\nx", "word_count": 1,
         "tokens": 5}
    ]
    issues = validate_file(write_json(tmp_path / "book.json", data))
    got = {(i.record, i.field, i.reason) for i in issues}
    assert got == {
        ("meta", "total_scenes", "total_scenes is 2 but the file has 3 scenes (2 narrative + 1 reference scene)"),
        ("meta", "total_chapters", "total_chapters is 3 but the file has 1 chapters"),
        ("scene 3", "text", "duplicate scene: same text as scene 2"),
    }, reasons(issues)


def test_book_schema_errors_are_mapped_to_scene_and_field(tmp_path: Path) -> None:
    data = book([scene(1), scene(2), scene(3)])
    del data["scenes"][1]["chapter_index"]
    data["scenes"][2]["text"] = " \n"
    data["scenes"][2]["mood"] = "dark"
    data["meta"]["book_id"] = "Bad Id"
    issues = validate_file(write_json(tmp_path / "book.json", data))
    got = {(i.record, i.field) for i in issues}
    expected = {("scene 2", "chapter_index"), ("scene 3", "mood"), ("scene 3", "text"), ("meta", "book_id")}
    assert got == expected, reasons(issues)


def test_strict_json_types(tmp_path: Path) -> None:
    data = book([scene(1)])
    data["scenes"][0]["scene_id"] = "1"
    issues = validate_file(write_json(tmp_path / "book.json", data))
    assert [(i.record, i.field) for i in issues] == [("scenes[0]", "scene_id")], reasons(issues)


def test_book_token_budgets(tmp_path: Path, counter) -> None:
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


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text('{\n  "meta": {,\n}', encoding="utf-8")
    issues = validate_file(path)
    assert len(issues) == 1
    assert issues[0].reason.startswith("invalid JSON at line 2, column 12:")


# --------------------------------------------------------------------------- other kinds


def test_single_objects_are_detected(tmp_path: Path, counter) -> None:
    instruction = {
        "scene_goal": "Avis meets Ernest at dinner.",
        "characters_present": ["Avis", "Ernest"],
        "emotional_beat": "curiosity",
        "constraints": "first person",
    }
    path = write_json(tmp_path / "instruction.json", instruction)
    assert detect_kind(path, instruction) == "instruction"
    assert validate_file(path, counter=counter) == []

    broken = dict(instruction, characters_present="Avis")
    issues = validate_file(write_json(tmp_path / "broken_instruction.json", broken))
    assert [i.field for i in issues] == ["characters_present"], reasons(issues)

    one_scene = scene(7, running_summary="So far.")
    assert detect_kind(tmp_path / "s.json", one_scene) == "scene"
    assert validate_file(write_json(tmp_path / "s.json", one_scene), counter=counter) == []


def test_world_context_object_budget(tmp_path: Path, counter) -> None:
    fields = ["tone_style", "world_rules", "protagonist_conditions", "factions", "locations", "narrative_engine"]
    data = {f: "dark and grim " * 10 for f in fields}
    path = write_json(tmp_path / "wc.json", data)
    assert detect_kind(path, data) == "world_context"
    assert validate_file(path, counter=counter) == []
    tiny = Budgets().model_copy(deep=True)
    tiny.record.world_context = 10
    issues = validate_file(path, counter=counter, budgets=tiny)
    assert len(issues) == 1 and "rendered world_context is" in issues[0].reason


def test_recipe_yaml(tmp_path: Path) -> None:
    good = tmp_path / "prep.yaml"
    good.write_text("version: 1\nkind: prep\nname: demo\nbooks: [data/books]\n", encoding="utf-8")
    assert validate_file(good) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nkind: prep\nname: demo\nbooks: [x]\nbudgets:\n  scene:\n    hard_maxx: 5\n", encoding="utf-8"
    )
    issues = validate_file(bad)
    assert [(i.field, i.reason) for i in issues] == [("budgets.scene.hard_maxx", "unknown field (not in the schema)")]
    wrong_version = tmp_path / "v2.yml"
    wrong_version.write_text("version: 2\nkind: prep\nname: demo\nbooks: [x]\n", encoding="utf-8")
    assert "version 2 is not supported" in validate_file(wrong_version)[0].reason
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: prep\nbooks: [x\n", encoding="utf-8")
    assert validate_file(broken)[0].reason.startswith("invalid YAML at line")


def test_unknown_content_and_missing_path(tmp_path: Path) -> None:
    path = write_json(tmp_path / "other.json", {"hello": "world"})
    issues = validate_file(path)
    assert len(issues) == 1 and issues[0].reason.startswith("unknown content")
    missing = validate_paths([tmp_path / "nope.jsonl"])
    assert missing[0].reason == "no such file or directory"


def test_validate_paths_recurses_and_summarizes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    write_jsonl(tmp_path / "sub" / "train.jsonl", [record("a"), "not json"])
    write_json(tmp_path / "book.json", book([scene(1), scene(1, "x y")]))
    write_json(tmp_path / "book.schema.json", {"type": "object"})  # generated schemas are skipped
    write_json(tmp_path / ".hidden" / "junk.json", {"junk": 1})
    (tmp_path / "notes.md").write_text("# not data\n", encoding="utf-8")
    issues = validate_paths([tmp_path])
    assert sorted({Path(i.file).name for i in issues}) == ["book.json", "train.jsonl"], reasons(issues)
    summary = summarize(issues)
    assert f"{tmp_path / 'book.json'}: 1 error, 0 warnings" in summary
    assert f"{tmp_path / 'sub' / 'train.jsonl'}: 1 error, 0 warnings" in summary
    assert summary.endswith("total: 2 errors, 0 warnings in 2 files")
    assert summarize([]) == "no issues"


# --------------------------------------------------------------------------- the peer data set


@needs_peer
def test_peer_data_set(counter) -> None:
    issues = validate_paths([PEER_DIR], counter=counter)
    by_file: dict[str, list[ValidationIssue]] = {}
    for issue in issues:
        by_file.setdefault(Path(issue.file).name, []).append(issue)

    # every stage file and the JSONL parse and match the schemas: no schema noise
    assert not any("unknown field" in i.reason or "required field" in i.reason for i in issues), reasons(issues)
    # the final JSONL (53 records) is within the 4096-token record budget
    assert f"json_final_{PEER_STEM}.jsonl" not in by_file, reasons(issues)

    scene_file = by_file[f"json_scene_{PEER_STEM}.json"]
    assert any(
        i.field == "total_scenes" and "total_scenes is 53 but the file has 54 scenes" in i.reason for i in scene_file
    ), reasons(scene_file)
    # the extra scene is the foreword (chapter_index 0) without is_reference
    assert any(i.record == "scene 1" and i.field == "is_reference" and i.severity == "warning" for i in scene_file)

    # the world context shared by the stage files is over the 400-token budget
    for stage in ("scene", "sum", "ins"):
        errors = [i for i in by_file[f"json_{stage}_{PEER_STEM}.json"] if i.severity == "error"]
        assert any(i.field == "world_context" and "budget is 400" in i.reason for i in errors), reasons(errors)
    # instructions are over the ~50-token budget: warnings only
    ins = by_file[f"json_ins_{PEER_STEM}.json"]
    assert [i for i in ins if i.field == "instruction"] and all(
        i.severity == "warning" for i in ins if i.field == "instruction"
    )

    # schema-only run (no tokenizer): the count mismatch is the only error
    plain = validate_paths([PEER_DIR])
    assert [i.field for i in plain if i.severity == "error"] == ["total_scenes"], reasons(plain)


@needs_peer
def test_peer_data_set_copies_catch_injected_faults(tmp_path: Path) -> None:
    data = json.loads((PEER_DIR / f"json_sum_{PEER_STEM}.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["scenes"][10]["scene_id"] = broken["scenes"][9]["scene_id"]
    broken["scenes"][20]["text"] = broken["scenes"][19]["text"]
    issues = validate_file(write_json(tmp_path / "sum.json", broken))
    kinds = {(i.field, i.reason.split(" ")[0]) for i in issues}
    assert ("scene_id", "duplicate") in kinds and ("text", "duplicate") in kinds, reasons(issues)


# --------------------------------------------------------------------------- tagged sections and compiled sidecars


def test_user_turn_without_tagged_sections_is_a_warning(tmp_path: Path) -> None:
    no_tags = record("Scene one.", user="Write the next scene, please.")
    partial = record("Scene two.", user="<world_context>\nW\n</world_context>\nWrite it.")
    no_progress = record("Scene three.", user=USER_TURN.replace("NOVEL PROGRESS: 0%\n\n", ""))
    peer_style = record("Scene four.", user=USER_TURN.replace("scene_instruction>", "instruction>"))
    bad_percent = record("Scene five.", user=USER_TURN.replace("NOVEL PROGRESS: 0%", "NOVEL PROGRESS: 140%"))
    path = write_jsonl(tmp_path / "train.jsonl", [no_tags, partial, no_progress, peer_style, bad_percent])
    issues = validate_file(path)
    assert not has_errors(issues)
    got = [(i.record, i.field, i.reason) for i in issues]
    assert got == [
        ("record 1", "messages.1.content",
         "user turn lacks the tagged sections <world_context>, <running_summary>, <scene_instruction>"),
        ("record 2", "messages.1.content", "user turn lacks the tagged sections <running_summary>, <scene_instruction>"),
        ("record 3", "messages.1.content", "<running_summary> does not start with a 'NOVEL PROGRESS: XX%' line (0-100)"),
        ("record 5", "messages.1.content", "<running_summary> does not start with a 'NOVEL PROGRESS: XX%' line (0-100)"),
    ], reasons(issues)
    assert issues[0].format().endswith(": record 1: field messages.1.content: warning: user turn lacks the tagged "
                                       "sections <world_context>, <running_summary>, <scene_instruction>")


def test_compiled_record_metadata_sidecar(tmp_path: Path) -> None:
    meta = {
        "record_id": "book/1", "split": "train", "book_id": "book", "scene_id": 1, "chapter_index": 1,
        "chapter_title": None, "is_reference": False, "position": 1, "sequence_length": 2, "progress_percent": 0,
        "tokens": 900, "scene_tokens": 600, "context_tokens": 300, "world_context_tokens": 100,
        "summary_tokens": 20, "instruction_tokens": 30,
    }
    write_jsonl(tmp_path / "train.jsonl", [record("a"), record("b")])
    good = write_jsonl(tmp_path / "train.meta.jsonl", [meta, dict(meta, record_id="book/2", scene_id=2)])
    assert detect_kind(good, None) == "record_meta"
    assert validate_file(good) == []
    assert validate_paths([tmp_path]) == []  # the sidecar is not mistaken for training records

    bad = write_jsonl(
        tmp_path / "train.meta.jsonl", [meta, dict(meta, progress_percent=120), dict(meta, colour="red")]
    )
    got = {(i.record, i.field, i.reason.split(" (")[0].split(";")[0]) for i in validate_file(bad)}
    assert got == {
        ("record 2", "progress_percent", "Input should be less than or equal to 100"),
        ("record 2", "record_id", "duplicate record_id 'book/1'"),
        ("record 3", "colour", "unknown field"),
        ("record 3", "record_id", "duplicate record_id 'book/1'"),
        (None, None, "3 metadata lines but train.jsonl holds 2 records"),
    }, reasons(validate_file(bad))

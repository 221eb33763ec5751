"""``novelcraft.validate.training``: ChatML training JSONL, its sidecars and tagged sections."""

from __future__ import annotations

import json
from pathlib import Path

from novelcraft.recipes import Budgets
from novelcraft.validate import detect_kind, has_errors, validate_file, validate_paths

HERE = Path(__file__).resolve().parents[1]


PEER_SAMPLE = HERE / "data" / "peer_sample.jsonl"


# the user turn of the conftest's record()
USER_TURN = (
    "<world_context>\nA grim world.\n</world_context>\n"
    "<running_summary>\nNOVEL PROGRESS: 0%\n\nNothing has happened yet.\n</running_summary>\n"
    "<scene_instruction>\nWrite the scene.\n</scene_instruction>"
)


def tight_budgets(max_tokens: int) -> Budgets:
    """Budgets whose record limit is ``max_tokens`` (the other limits shrunk so that they fit)."""
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


def test_valid_training_file_has_no_issues(tmp_path: Path, counter, write_jsonl, record) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [record("First scene."), record("Second scene.")])
    assert validate_file(path) == []
    assert validate_file(path, counter=counter) == []


def test_invalid_json_line_is_reported_with_its_line(tmp_path: Path, write_jsonl, reasons, record) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [record("a"), '{"messages": [', record("b")])
    issues = validate_file(path)
    assert len(issues) == 1, reasons(issues)
    issue = issues[0]
    assert issue.record == "record 2" and issue.severity == "error"
    assert "invalid JSON on line 2, column" in issue.reason
    assert issue.format().startswith(f"{path}: record 2: invalid JSON on line 2")


def test_wrong_role_order(tmp_path: Path, record, write_jsonl, reasons) -> None:
    bad = record("Another scene.")
    bad["messages"] = [bad["messages"][1], bad["messages"][0], bad["messages"][2]]
    path = write_jsonl(tmp_path / "train.jsonl", [record(), bad])
    issues = validate_file(path)
    assert len(issues) == 1, reasons(issues)
    assert issues[0].record == "record 2" and issues[0].field == "messages"
    assert "got user, system, assistant" in issues[0].reason


def test_missing_message_is_a_role_error_not_noise(tmp_path: Path, record, reasons, write_jsonl) -> None:
    bad = record()
    del bad["messages"][0]
    issues = validate_file(write_jsonl(tmp_path / "train.jsonl", [bad]))
    assert [i.field for i in issues] == ["messages"], reasons(issues)
    assert "got user, assistant" in issues[0].reason


def test_missing_field_and_unknown_field(tmp_path: Path, record, reasons, write_jsonl) -> None:
    bad = record()
    del bad["messages"][2]["content"]
    bad["messages"][1]["name"] = "x"
    issues = validate_file(write_jsonl(tmp_path / "train.jsonl", [bad]))
    got = {(i.record, i.field, i.reason) for i in issues}
    assert ("record 1", "messages.2.content", "required field is missing") in got, reasons(issues)
    assert ("record 1", "messages.1.name", "unknown field (not in the schema)") in got
    line = next(i for i in issues if i.field == "messages.2.content").format()
    assert line == f"{tmp_path / 'train.jsonl'}: record 1: field messages.2.content: required field is missing"


def test_empty_and_blank_content(tmp_path: Path, reasons, record, write_jsonl) -> None:
    empty, blank = record(), record()
    empty["messages"][1]["content"] = ""
    blank["messages"][2]["content"] = "  \n "
    issues = validate_file(write_jsonl(tmp_path / "train.jsonl", [empty, blank]))
    got = {(i.record, i.field, i.reason) for i in issues}
    assert got == {
        ("record 1", "messages.1.content", "empty string"),
        ("record 2", "messages.2.content", "content is only whitespace"),
    }, reasons(issues)


def test_duplicate_training_records(tmp_path: Path, write_jsonl, reasons, record) -> None:
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


def test_over_budget_record_with_real_tokenizer(tmp_path: Path, counter, write_jsonl, reasons, record) -> None:
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


def test_peer_sample_is_valid_foreign_input(counter, reasons) -> None:
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


def test_user_turn_without_tagged_sections_is_a_warning(tmp_path: Path, record, write_jsonl, reasons) -> None:
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
        (
            "record 1",
            "messages.1.content",
            "user turn lacks the tagged sections <world_context>, <running_summary>, <scene_instruction>",
        ),
        (
            "record 2",
            "messages.1.content",
            "user turn lacks the tagged sections <running_summary>, <scene_instruction>",
        ),
        (
            "record 3",
            "messages.1.content",
            "<running_summary> does not start with a 'NOVEL PROGRESS: XX%' line (0-100)",
        ),
        (
            "record 5",
            "messages.1.content",
            "<running_summary> does not start with a 'NOVEL PROGRESS: XX%' line (0-100)",
        ),
    ], reasons(issues)
    assert (
        issues[0]
        .format()
        .endswith(
            ": record 1: field messages.1.content: warning: user turn lacks the tagged "
            "sections <world_context>, <running_summary>, <scene_instruction>"
        )
    )


def test_compiled_record_metadata_sidecar(tmp_path: Path, write_jsonl, reasons, record) -> None:
    meta = {
        "record_id": "book/1",
        "split": "train",
        "book_id": "book",
        "scene_id": 1,
        "chapter_index": 1,
        "chapter_title": None,
        "is_reference": False,
        "position": 1,
        "sequence_length": 2,
        "progress_percent": 0,
        "tokens": 900,
        "scene_tokens": 600,
        "context_tokens": 300,
        "world_context_tokens": 100,
        "summary_tokens": 20,
        "instruction_tokens": 30,
    }
    write_jsonl(tmp_path / "train.jsonl", [record("a"), record("b")])
    good = write_jsonl(tmp_path / "train.meta.jsonl", [meta, dict(meta, record_id="book/2", scene_id=2)])
    assert detect_kind(good, None) == "record_meta"
    assert validate_file(good) == []
    assert validate_paths([tmp_path]) == []  # the sidecar is not mistaken for training records

    bad = write_jsonl(tmp_path / "train.meta.jsonl", [meta, dict(meta, progress_percent=120), dict(meta, colour="red")])
    got = {(i.record, i.field, i.reason.split(" (")[0].split(";")[0]) for i in validate_file(bad)}
    assert got == {
        ("record 2", "progress_percent", "Input should be less than or equal to 100"),
        ("record 2", "record_id", "duplicate record_id 'book/1'"),
        ("record 3", "colour", "unknown field"),
        ("record 3", "record_id", "duplicate record_id 'book/1'"),
        (None, None, "3 metadata lines but train.jsonl holds 2 records"),
    }, reasons(validate_file(bad))

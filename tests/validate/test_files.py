"""``novelcraft.validate.files``: reading files, recipes, unknown content, folders, the peer data set."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.validate import ValidationIssue, summarize, validate_file, validate_paths

PEER_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "lora-novel-craft"


PEER_STEM = "Jack_London-The_Iron_Heel"


needs_peer = pytest.mark.skipif(
    not PEER_DIR.is_dir(), reason=f"peer data set not present at {PEER_DIR} (../shared beside the checkout)"
)


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text('{\n  "meta": {,\n}', encoding="utf-8")
    issues = validate_file(path)
    assert len(issues) == 1
    assert issues[0].reason.startswith("invalid JSON at line 2, column 12:")


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


def test_unknown_content_and_missing_path(tmp_path: Path, write_json) -> None:
    path = write_json(tmp_path / "other.json", {"hello": "world"})
    issues = validate_file(path)
    assert len(issues) == 1 and issues[0].reason.startswith("unknown content")
    missing = validate_paths([tmp_path / "nope.jsonl"])
    assert missing[0].reason == "no such file or directory"


def test_validate_paths_recurses_and_summarizes(
    tmp_path: Path, write_jsonl, write_json, reasons, book, record, scene
) -> None:
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


@needs_peer
def test_peer_data_set(counter, reasons) -> None:
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

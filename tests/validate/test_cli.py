"""``novelcraft validate`` and ``novelcraft schemas``: exit statuses, and what a recipe brings to the checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft import cli

ROOT = Path(__file__).resolve().parents[2]


def test_validate_prints_issues_and_a_summary(tmp_path: Path, capsys, record, write_jsonl) -> None:
    good = write_jsonl(tmp_path / "train.jsonl", [record("One."), record("Two.")])
    assert cli.main(["validate", str(good)]) == 0
    assert capsys.readouterr().out.strip() == "no issues"
    bad = write_jsonl(tmp_path / "bad.jsonl", [record("One."), "not json"])
    assert cli.main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: record 2:" in out and out.rstrip().endswith("total: 1 error, 0 warnings in 1 file")


@pytest.mark.parametrize("recipe", ["compile/default.yaml", "train/axolotl-cpu-smoke.yaml"])
def test_a_recipe_brings_its_chat_template(tmp_path: Path, capsys, record, write_jsonl, recipe: str) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", [record("One.")])
    assert cli.main(["validate", "--recipe", str(ROOT / "recipes" / recipe), str(data)]) == 0
    assert capsys.readouterr().out.strip() == "no issues"


def test_schemas_check_finds_stale_files(tmp_path: Path, capsys) -> None:
    assert cli.main(["schemas", "--check", str(ROOT / "schemas")]) == 0
    assert cli.main(["schemas", str(tmp_path)]) == 0
    (tmp_path / "book.schema.json").write_text("{}", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["schemas", "--check", str(tmp_path)]) == 1
    assert "book" in capsys.readouterr().out

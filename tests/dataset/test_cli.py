"""``novelcraft compile``: the command over a recipe file."""

from __future__ import annotations

from pathlib import Path

import yaml

from novelcraft import cli


def test_cli_register(tmp_path: Path, counter, capsys, write_run_layout, tiny_book) -> None:
    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("cli_book", narrative=5)])
    path = tmp_path / "compile.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "kind": "compile",
                "name": "cli",
                "books": [str(books_dir)],
                "output_dir": str(tmp_path / "out"),
            }
        ),
        encoding="utf-8",
    )
    assert cli.main(["compile", str(path), "split.validation_fraction=0.2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"data set {tmp_path / 'out' / 'cli'}: 4 train + 1 validation records from 1 book" in out
    assert cli.main(["compile", str(path), "split.validation_fraction=0.2", "--no-progress"]) == 0
    assert "(unchanged, skipped)" in capsys.readouterr().out
    prep = tmp_path / "prep.yaml"
    prep.write_text("version: 1\nkind: prep\nname: p\nbooks: [x]\n", encoding="utf-8")
    assert cli.main(["compile", str(prep)]) == 1
    assert "expected a recipe of kind 'compile', got 'prep'" in capsys.readouterr().err


def test_cli_summary_says_what_the_split_did(tmp_path: Path, counter, capsys, write_run_layout, tiny_book) -> None:
    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("two", narrative=2, reference=0)])
    path = tmp_path / "compile.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "kind": "compile",
                "name": "two",
                "books": [str(books_dir)],
                "output_dir": str(tmp_path / "out"),
            }
        ),
        encoding="utf-8",
    )
    assert cli.main(["compile", str(path), "split.by=scene", "split.validation_fraction=0.1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (
        "  split: by scene: 1 of 2 records (50%) held out for validation "
        "(asked: 0.1; at least one record is held out when the fraction is above 0)"
    ) in out.splitlines()
    assert "By scene: 1 of 2 records (50%)" in (tmp_path / "out" / "two" / "README.md").read_text(encoding="utf-8")

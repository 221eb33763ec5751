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

"""``novelcraft.pandoc``: the bundled pandoc 3, and one-line errors when it is missing or fails."""

from __future__ import annotations

from pathlib import Path

import pypandoc
import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.pandoc import pandoc_path, run_pandoc


def test_bundled_pandoc_converts(tmp_path: Path) -> None:
    assert Path(pandoc_path()).is_file()
    src = tmp_path / "a.md"
    src.write_text("# Title\n", encoding="utf-8")
    assert b"<h1" in run_pandoc([str(src), "-t", "html"], path=src, step="test", env={"LC_ALL": "C"})


def test_failures_name_the_file_and_step(tmp_path: Path, monkeypatch) -> None:
    missing = tmp_path / "missing.md"
    with pytest.raises(NovelcraftError, match=f"^{missing}: ingest: pandoc failed: "):
        run_pandoc([str(missing)], path=missing, step="ingest")

    def no_pandoc() -> str:
        raise OSError("No pandoc was found")

    monkeypatch.setattr(pypandoc, "get_pandoc_path", no_pandoc)
    with pytest.raises(NovelcraftError, match=r"^pandoc: pandoc is missing: .*: bash scripts/setup\.sh dev$"):
        pandoc_path()

"""``novelcraft.bench.report``: the tables of a report, and the install hint when plots cannot be drawn."""

from __future__ import annotations

import builtins

import pytest

from novelcraft.bench.baseline import load_human_baseline
from novelcraft.bench.report import figure_rows, new_report, plot_curves
from novelcraft.errors import NovelcraftError

pytest.importorskip("numpy", reason="numpy is needed for embeddings and plots")


def test_without_novels_the_table_shows_the_human_books() -> None:
    base = load_human_baseline()
    header, rows = figure_rows(new_report([], base))
    assert header[: 1 + len(base.books)] == ["metric", *[b.title[:32] for b in base.books]]
    assert header[-3:] == ["human min", "human mean", "human max"]
    assert rows and not any("▲" in cell or "▼" in cell for row in rows for cell in row)


def test_missing_matplotlib_names_the_setup_command(tmp_path, monkeypatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(
        NovelcraftError, match=r"matplotlib is needed for the report plots: bash scripts/setup\.sh dev,bench$"
    ):
        plot_curves(new_report([], load_human_baseline()), tmp_path)

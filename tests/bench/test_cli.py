"""``novelcraft bench``: the command on a Markdown novel, and its errors."""

from __future__ import annotations

import argparse

import pytest

from novelcraft.bench.recipe import BenchRecipe
from novelcraft.errors import NovelcraftError
from novelcraft.recipes import load_recipe

pytest.importorskip("numpy", reason="numpy is needed for embeddings and plots")


def _parser() -> argparse.ArgumentParser:
    from novelcraft.cli import build_parser

    return build_parser()


def test_cli_bench_markdown_novel(tmp_path, capsys, generated_markdown):
    pytest.importorskip("matplotlib", reason="matplotlib (extra 'bench') draws the report plots")
    novel = tmp_path / "novel.md"
    novel.write_text(generated_markdown(), encoding="utf-8")
    args = _parser().parse_args(["bench", str(novel), "--embedder", "tfidf", "--report", str(tmp_path / "rep")])
    assert args.command_obj.run(args) == 0
    out = capsys.readouterr().out
    assert "The Dark Light: 6 scenes" in out
    for name in ("report.md", "report.html", "results.json", "stats.json", "recipe.resolved.yaml"):
        assert (tmp_path / "rep" / name).is_file()
    resolved = load_recipe(tmp_path / "rep" / "recipe.resolved.yaml")
    assert isinstance(resolved, BenchRecipe) and resolved.novels == [str(novel)]


def test_cli_bench_errors(tmp_path):
    args = _parser().parse_args(["bench"])
    with pytest.raises(NovelcraftError, match="nothing to do"):
        args.command_obj.run(args)
    args = _parser().parse_args(["bench", str(tmp_path / "missing.md"), "--report", str(tmp_path / "r")])
    with pytest.raises(NovelcraftError, match="no such file"):
        args.command_obj.run(args)

"""End to end: a short generated Markdown novel and a real sample novel scored, reported with PNGs;
the CLI subcommand; speed benchmarks as subprocesses; the packaged human baseline; the recipe."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from novelcraft.bench.baseline import load_human_baseline
from novelcraft.bench.embed import TfidfEmbedder, load_embedder
from novelcraft.bench.novel import novel_from_book, parse_markdown_novel
from novelcraft.bench.recipe import BenchRecipe
from novelcraft.bench.report import BenchReport, new_report, write_report
from novelcraft.bench.score import reference_index_for, score_novel
from novelcraft.bench.speed import run_speed_benchmarks
from novelcraft.errors import NovelcraftError, RecipeError
from novelcraft.models import RunningSummary
from novelcraft.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("numpy", reason="numpy is needed for embeddings and plots")


def _summary(end: str, chars: str) -> str:
    return RunningSummary(
        scene_end_state=end,
        emotional_beat="unease",
        immediate_tension="The light is still out.",
        global_events=f"{chars} came to the island; the lighthouse went dark.",
        unresolved_threads="Who put out the light?",
        world_state="Storm season, no ferry.",
        active_characters=chars,
        global_shift="The island is cut off.",
    ).render()


SLOPPY = "It was a testament to her will, a tapestry of fear, and it sent shivers down her spine. "


def generated_markdown() -> str:
    """Six scenes: goals, targets and summaries; Anna is renamed Anne halfway; scene 5 copies scene 2."""
    scenes = [
        ("Anna arrives on the island and meets Tobias at the pier.", "Anna stepped off the ferry onto the pier where Tobias waited with a lantern. Anna asked about the lighthouse. Tobias said it had been dark for a week and that nobody on the island would talk about it. They walked up the cliff path in the wind."),
        ("Anna and Tobias climb the lighthouse.", "The stairs of the lighthouse were wet. Anna counted them aloud while Tobias held the lantern. At the top the great lamp was cold and the glass was cracked, as if someone had struck it with a hammer. Anna touched the crack. " + SLOPPY),
        ("Anna finds the keeper's logbook.", "In the keeper's room Anna found a logbook with the last page torn out. Tobias read the dates: the keeper had written every night for forty years and then stopped. Anna put the book in her coat. " + SLOPPY),
        ("Anne questions the villagers.", "Anne went down to the village at noon. The baker would not meet her eyes, and the priest said the keeper had gone to the mainland. Anne knew the ferry had not sailed. Tobias waited outside the church. " + SLOPPY),
        ("Anne returns to the lighthouse at night.", "The stairs of the lighthouse were wet. Anne counted them aloud while Tobias held the lantern. At the top the great lamp was cold and the glass was cracked, as if someone had struck it with a hammer. Anne touched the crack. " + SLOPPY),
        ("Anne lights the lamp.", "Anne poured the last oil into the lamp and struck a match. The light turned over the sea, and far out a boat answered with three flashes. Tobias laughed for the first time since she had come. " + SLOPPY),
    ]
    parts = ["# The Dark Light", ""]
    for i, (goal, text) in enumerate(scenes, 1):
        if i in (1, 4):
            parts += [f"# Chapter {1 if i == 1 else 2}", ""]
        elif i > 1:
            parts += ["* * *", ""]
        who = "Anna; Tobias" if i <= 3 else "Anne; Tobias"
        parts += [f"<!-- goal: {goal} -->", "<!-- target_words: 50 -->", f"<!-- summary: {_summary('End of scene ' + str(i) + '.', who)} -->", text, ""]
    return "\n".join(parts)


def test_generated_markdown_novel_scored_end_to_end(tmp_path):
    novel = parse_markdown_novel(generated_markdown())
    assert len(novel.scenes) == 6 and all(s.goal and s.summary and s.target_words == 50 for s in novel.scenes)
    refs = reference_index_for([parse_markdown_novel("# Chapter 1\n\nThe stairs of the lighthouse were wet and the lamp was cold and the glass was cracked.")])
    scores = score_novel(novel, references=refs, embedder=TfidfEmbedder())
    s = scores.summary
    assert s["scenes"] == 6
    assert ("Anna", "Anne") in [tuple(p) for p in scores.entities.drift_pairs]
    assert s["cross_rep5"] > 0.1  # scene 5 re-uses scene 2
    assert scores.scenes[4].cross_rep5 > 0.5
    assert s["slop_per_1k"] > 20  # far above any human book
    assert 0 < s["length_score"] <= 100
    assert scores.scenes[0].length_score == pytest.approx(__import__("novelcraft.bench.metrics", fromlist=["x"]).length_score(50, scores.scenes[0].words))
    assert s["summary_fields_present"] == 1.0 and s["summary_budget_compliance"] == 1.0
    assert s["summary_entity_recall"] is not None and s["summary_entity_recall"] > 0.5
    assert s["ref_longest_run"] >= 8
    assert s["goal_similarity"] is not None and s["prev_similarity"] is not None
    assert set(scores.curves) >= {"length_score", "rep4", "slop_per_1k", "goal_similarity", "memory_retention"}
    assert all(len(c) == 10 for c in scores.curves.values())

    pytest.importorskip("matplotlib", reason="matplotlib (extra 'bench') draws the report plots")
    report = new_report([scores], load_human_baseline())
    paths = write_report(report, tmp_path / "report")
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "| cliché hits / 1k words ↓ |" in md and "▲" in md
    assert "Anna / Anne" in md
    pngs = sorted((tmp_path / "report" / "plots").glob("*.png"))
    assert len(pngs) >= 10
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
        assert f"plots/{p.name}" in md and f"plots/{p.name}" in paths["html"].read_text(encoding="utf-8")
    again = BenchReport.model_validate_json(paths["json"].read_text(encoding="utf-8"))
    assert again.novels[0].summary == scores.summary


def test_packaged_human_baseline():
    base = load_human_baseline()
    assert len(base.books) == 3 and base.bins == 10
    for key in ("distinct1", "rep4", "slop_per_1k", "prev_similarity", "main_names"):
        r = base.ranges[key]
        assert r.min <= r.mean <= r.max and r.n == 3
    assert len(base.curve_ranges["distinct1"].mean) == 10
    shipped = json.loads((ROOT / "benchmarks" / "results" / "human_baseline.json").read_text(encoding="utf-8"))
    assert shipped == base.model_dump(mode="json")


def test_load_human_baseline_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    with pytest.raises(NovelcraftError, match="not a human baseline"):
        load_human_baseline(tmp_path / "x.json")


@pytest.mark.slow
def test_real_sample_novel_end_to_end(counter, books_dir, tmp_path):
    from novelcraft.bench.baseline import summarize_books
    from novelcraft.prep.book import prep_book
    from novelcraft.prep.recipe import PrepRecipe

    recipe = PrepRecipe(name="t", books=[str(books_dir)])
    alice = novel_from_book(prep_book(books_dir / "alice-in-wonderland.epub", recipe, counter))
    other = novel_from_book(prep_book(books_dir / "iron-heel.epub", recipe, counter))
    a = score_novel(alice, references=reference_index_for([other]), embedder=load_embedder("auto"))
    assert a.summary["scenes"] == len(alice.scenes) and a.summary["words"] > 20_000
    assert "Alice" in [n.name for n in a.entities.main[:3]]
    assert a.summary["ref_longest_run"] is not None and a.summary["ref_longest_run"] < 20  # unrelated books share no long run
    assert 0.3 < a.summary["distinct1"] < 0.7
    assert a.summary["rep4"] < 0.05 and a.summary["slop_per_1k"] < 5
    assert a.summary["prev_similarity"] is not None and a.summary["goal_similarity"] is None  # no goals in a human book
    pytest.importorskip("matplotlib", reason="matplotlib (extra 'bench') draws the report plots")
    paths = write_report(new_report([a], summarize_books([a])), tmp_path / "r")
    assert (tmp_path / "r" / "plots" / "distinct1.png").is_file()
    assert "Alice" in paths["markdown"].read_text(encoding="utf-8")


def _parser() -> argparse.ArgumentParser:
    from novelcraft.cli import build_parser

    return build_parser()


def test_cli_bench_markdown_novel(tmp_path, capsys):
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


def test_speed_benchmarks_run_as_subprocesses(tmp_path):
    d = tmp_path / "benchmarks"
    d.mkdir()
    (d / "ok_speed.py").write_text(
        "import argparse, json\nap = argparse.ArgumentParser(); ap.add_argument('--json'); ap.add_argument('--n', type=int, default=1)\n"
        "a = ap.parse_args()\nprint('# ok report')\njson.dump({'tokens_per_s': 1234.5 * a.n, 'nested': {'x': 2}}, open(a.json, 'w'))\n",
        encoding="utf-8",
    )
    (d / "broken_speed.py").write_text("import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n", encoding="utf-8")
    (d / "slow_speed.py").write_text("import time\ntime.sleep(30)\n", encoding="utf-8")
    res = {r.name: r for r in run_speed_benchmarks(d, expected=["generate_speed"], args={"ok_speed": ["--n", "2"]}, timeout_s=3)}
    assert res["ok_speed"].status == "ok" and res["ok_speed"].figures == {"tokens_per_s": 2469.0, "nested": {"x": 2}}
    assert res["ok_speed"].markdown.startswith("# ok report")
    assert res["broken_speed"].status == "failed" and "exit 3" in res["broken_speed"].error and "boom" in res["broken_speed"].error
    assert res["slow_speed"].status == "timeout"
    assert res["generate_speed"].status == "not available"


@pytest.mark.slow
def test_speed_report_with_real_prep_benchmark(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (extra 'bench') draws the report plots")
    res = run_speed_benchmarks(
        ROOT / "benchmarks",
        names=["prep_speed"],
        args={"prep_speed": ["--books", str(ROOT / "data/books/alice-in-wonderland.epub"), "--repeat", "1", "--no-memory", "--synthetic-words", "20000"]},
        timeout_s=600,
        cwd=ROOT,
    )
    assert res[0].status == "ok", res[0].error
    assert res[0].figures
    paths = write_report(new_report([], load_human_baseline(), res), tmp_path)
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "## Speed benchmarks" in md and "| prep_speed | ok |" in md


def test_bench_recipes_load():
    r = load_recipe(ROOT / "recipes" / "bench" / "default.yaml")
    assert isinstance(r, BenchRecipe) and r.baseline.source == "packaged" and r.bins == 10
    assert load_recipe(ROOT / "recipes" / "bench" / "human-baseline.yaml").baseline.source == "compute"
    with pytest.raises(RecipeError, match="unknown key"):
        load_recipe(ROOT / "recipes" / "bench" / "default.yaml", ["embedding.modle=tfidf"])
    with pytest.raises(RecipeError, match="baseline.file is required"):
        load_recipe(ROOT / "recipes" / "bench" / "default.yaml", ["baseline.source=file"])


def test_importing_bench_loads_nothing_heavy():
    import subprocess

    code = "import sys, novelcraft.bench; heavy = [m for m in ('numpy', 'matplotlib', 'torch', 'tokenizers') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"

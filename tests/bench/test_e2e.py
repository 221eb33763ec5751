"""End to end: a short generated Markdown novel and a real sample novel scored and reported with PNGs."""

from __future__ import annotations

import pytest

from novelcraft.bench.baseline import load_human_baseline
from novelcraft.bench.embed import TfidfEmbedder, load_embedder
from novelcraft.bench.novel import novel_from_book, parse_markdown_novel
from novelcraft.bench.report import BenchReport, new_report, write_report
from novelcraft.bench.score import reference_index_for, score_novel

pytest.importorskip("numpy", reason="numpy is needed for embeddings and plots")


def test_generated_markdown_novel_scored_end_to_end(tmp_path, generated_markdown):
    novel = parse_markdown_novel(generated_markdown())
    assert len(novel.scenes) == 6 and all(s.goal and s.summary and s.target_words == 50 for s in novel.scenes)
    refs = reference_index_for(
        [
            parse_markdown_novel(
                "# Chapter 1\n\nThe stairs of the lighthouse were wet and the lamp was cold and the glass was cracked."
            )
        ]
    )
    scores = score_novel(novel, references=refs, embedder=TfidfEmbedder())
    s = scores.summary
    assert s["scenes"] == 6
    assert ("Anna", "Anne") in [tuple(p) for p in scores.entities.drift_pairs]
    assert s["cross_rep5"] > 0.1  # scene 5 re-uses scene 2
    assert scores.scenes[4].cross_rep5 > 0.5
    assert s["slop_per_1k"] > 20  # far above any human book
    assert 0 < s["length_score"] <= 100
    assert scores.scenes[0].length_score == pytest.approx(
        __import__("novelcraft.bench.metrics", fromlist=["x"]).length_score(50, scores.scenes[0].words)
    )
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
    assert (
        a.summary["ref_longest_run"] is not None and a.summary["ref_longest_run"] < 20
    )  # unrelated books share no long run
    assert 0.3 < a.summary["distinct1"] < 0.7
    assert a.summary["rep4"] < 0.05 and a.summary["slop_per_1k"] < 5
    assert a.summary["prev_similarity"] is not None and a.summary["goal_similarity"] is None  # no goals in a human book
    pytest.importorskip("matplotlib", reason="matplotlib (extra 'bench') draws the report plots")
    paths = write_report(new_report([a], summarize_books([a])), tmp_path / "r")
    assert (tmp_path / "r" / "plots" / "distinct1.png").is_file()
    assert "Alice" in paths["markdown"].read_text(encoding="utf-8")

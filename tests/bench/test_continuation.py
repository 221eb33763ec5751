"""Judge-free evaluation of reasoning continuation: metrics on inline text, a run with scripted models on real
held-out records, and (slow) the real perplexity scorer with the embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novelcraft.bench.continuation import (
    ContinuationBenchRecipe,
    ItemScore,
    context_copy,
    progress_ratio,
    summarize,
    text_scores,
)
from novelcraft.bench.continuation_run import load_held_out, run_continuation_bench
from novelcraft.llm.testing import ScriptedEngine

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "continuation_sample.jsonl"


def test_text_metrics():
    gold = "She ran to the door. It was locked. She knocked twice."
    n, g, ratio, rep, copy = text_scores("She waited. Nobody came.", gold, "Earlier text. She ran to the door.")
    assert (n, g, ratio) == (2, 3, 2 / 3) and rep == 0.0 and copy == 0.0
    looped = "the cat sat on the mat " * 5
    assert text_scores(looped, gold, "")[3] > 0.5
    ctx = "one two three four five six seven eight nine ten"
    assert context_copy("one two three four five six seven eight", ctx) == 1.0
    assert progress_ratio(0.2, 0.4) == 0.5 and progress_ratio(0.2, 0.0) is None


def test_summary_medians_and_failures():
    base = dict(
        clean_format=True, sentences=2, gold_sentences=2, words=9, gold_words=9, repetition=0.0, context_copy=0.0
    )
    scores = [
        ItemScore(record_id="a", length_ratio=1.0, reasoning_gain=0.2, progress=1.0, **base),
        ItemScore(record_id="b", length_ratio=2.0, reasoning_gain=-0.1, progress=0.5, **base),
        ItemScore(record_id="c", error="timeout", **base),
    ]
    s = summarize("m", scores)
    assert (s.items, s.failed, s.length_ratio_median, s.progress_median) == (3, 1, 1.5, 0.75)
    assert s.reasoning_helps == 0.5 and abs(s.length_log_error - 0.3466) < 1e-3


def test_held_out_records_read_back_context_and_gold():
    items = load_held_out(SAMPLE)
    rows = [json.loads(x) for x in SAMPLE.read_text().splitlines()]
    assert len(items) == len(rows) == 2
    for it, row in zip(items, rows):
        assert it.context in row["messages"][0]["content"] and it.gold and it.gold in row["messages"][1]["content"]
        assert f"<answer>{it.gold}</answer>" in row["messages"][1]["content"]


def test_run_with_scripted_models_writes_report(tmp_path):
    def good(req):  # reasons, then continues with two sentences
        return "<reasoning>Next she must act.</reasoning><answer>She stood up. She left the room.</answer>"

    def sloppy(req):  # the doubled tag of CRA-v1-7B, no closing tag, and a loop
        return "<reasoning>Plan<reasoning><answer>" + "It rained again. " * 12

    recipe = ContinuationBenchRecipe(
        name="t", output_dir=str(tmp_path), data=str(SAMPLE), embedder="tfidf", scorer={"enabled": False},
        models=[{"name": "base", "llm": {}}, {"name": "tuned", "llm": {}, "format": "chat"}],
    )  # fmt: skip
    engines = {"base": ScriptedEngine(sloppy), "tuned": ScriptedEngine(good)}
    stats, results = run_continuation_bench(recipe, engines=engines)
    base, tuned = results["summaries"]
    assert base["clean_format"] == 0.0 and tuned["clean_format"] == 1.0
    assert tuned["length_ratio_median"] < base["length_ratio_median"]
    assert "Write about" in engines["tuned"].requests[0].messages[-1]["content"]  # chat prompt with length note
    assert engines["base"].requests[0].messages[0]["content"].startswith("### System: You are a writer’s assistant.")
    report = (tmp_path / "t" / "report.md").read_text()
    assert "| base |" in report and "| tuned |" in report
    assert json.loads((tmp_path / "t" / "stats.json").read_text())["command"] == "bench-continuation"
    assert len(stats.items) == 2


@pytest.mark.slow
def test_real_scorer_prefers_the_true_plan(tmp_path):
    """The embedded model as scorer: the gold continuation is likelier after a plan that tells it."""
    pytest.importorskip("torch")
    from novelcraft.bench.continuation_run import PerplexityScorer

    scorer = PerplexityScorer("embedded", max_context_tokens=256)
    context = "Tom had lost his dog in the woods. He searched all evening and called its name."
    gold = "At last the dog ran out of the trees, barking, and jumped into his arms."
    telling = scorer.gain(context, gold, "The dog comes back: it runs out of the trees, barking, into Tom's arms.")
    unrelated = scorer.gain(context, gold, "Stock prices in the banking sector fell sharply on Tuesday.")
    assert telling is not None and unrelated is not None and telling > unrelated
    assert scorer.gain(context, gold, " ") is None
    scorer.close()

"""``novelcraft.dataset.stats``: token statistics of data sets, ours and the peer's."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.chat_format import render_chatml
from novelcraft.dataset import dataset_stats, read_jsonl
from novelcraft.validate import has_errors, validate_file

ROOT = Path(__file__).resolve().parents[2]


PEER_SAMPLE = ROOT / "tests" / "data" / "peer_sample.jsonl"


PEER_FINAL = ROOT.parent / "shared" / "reference" / "lora-novel-craft" / "json_final_Jack_London-The_Iron_Heel.jsonl"


def test_dataset_stats_of_the_peer_sample(counter) -> None:
    rows = read_jsonl(PEER_SAMPLE)
    stats = dataset_stats(rows, counter)
    assert stats.records == 5
    totals = [counter.count(render_chatml(r["messages"])) for r in rows]
    scenes = [counter.count(r["messages"][2]["content"]) for r in rows]
    assert stats.tokens.max == max(totals) and stats.scene.total == sum(scenes)
    assert stats.narrative_context_ratio == round(sum(scenes) / (sum(totals) - sum(scenes)), 3)


@pytest.mark.skipif(not PEER_FINAL.is_file(), reason=f"peer data set not present at {PEER_FINAL}")
def test_peer_final_jsonl_validates_and_measures(counter) -> None:
    issues = validate_file(PEER_FINAL, counter=counter)
    assert not has_errors(issues) and issues == [], "\n".join(i.format() for i in issues)
    stats = dataset_stats(read_jsonl(PEER_FINAL), counter)
    assert stats.records == 53 and stats.tokens.max <= 4096
    assert stats.narrative_context_ratio is not None and stats.narrative_context_ratio > 1

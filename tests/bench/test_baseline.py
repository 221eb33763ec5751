"""``novelcraft.bench.baseline``: the packaged human baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novelcraft.bench.baseline import load_human_baseline
from novelcraft.errors import NovelcraftError

pytest.importorskip("numpy", reason="numpy is needed for embeddings and plots")


ROOT = Path(__file__).resolve().parents[2]


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

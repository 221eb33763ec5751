"""``novelcraft.bench.speed``: speed benchmarks run as subprocesses, and reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.bench.baseline import load_human_baseline
from novelcraft.bench.report import new_report, write_report
from novelcraft.bench.speed import run_speed_benchmarks

pytest.importorskip("numpy", reason="numpy is needed for embeddings and plots")


ROOT = Path(__file__).resolve().parents[2]


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
    res = {
        r.name: r
        for r in run_speed_benchmarks(d, expected=["generate_speed"], args={"ok_speed": ["--n", "2"]}, timeout_s=3)
    }
    assert res["ok_speed"].status == "ok" and res["ok_speed"].figures == {"tokens_per_s": 2469.0, "nested": {"x": 2}}
    assert res["ok_speed"].markdown.startswith("# ok report")
    assert (
        res["broken_speed"].status == "failed"
        and "exit 3" in res["broken_speed"].error
        and "boom" in res["broken_speed"].error
    )
    assert res["slow_speed"].status == "timeout"
    assert res["generate_speed"].status == "not available"


@pytest.mark.slow
def test_speed_report_with_real_prep_benchmark(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (extra 'bench') draws the report plots")
    res = run_speed_benchmarks(
        ROOT / "benchmarks",
        names=["prep_speed"],
        args={
            "prep_speed": [
                "--books",
                str(ROOT / "data/books/alice-in-wonderland.epub"),
                "--repeat",
                "1",
                "--no-memory",
                "--synthetic-words",
                "20000",
            ]
        },
        timeout_s=600,
        cwd=ROOT,
    )
    assert res[0].status == "ok", res[0].error
    assert res[0].figures
    paths = write_report(new_report([], load_human_baseline(), res), tmp_path)
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "## Speed benchmarks" in md and "| prep_speed | ok |" in md

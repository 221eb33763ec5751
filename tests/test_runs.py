"""``novelcraft.runs``: inputs named by patterns, the manifest, the content-keyed store, the stats record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.runs import Manifest, ResultStore, files_with_suffix, fingerprint, resolve_inputs, settings_diff
from novelcraft.stats import ItemStats, RunStats, StageStats, read_stats


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x", encoding="utf-8")
    return path


def test_inputs_files_folders_and_globs_unique_in_order(tmp_path: Path) -> None:
    a, b = touch(tmp_path / "d" / "a.md"), touch(tmp_path / "d" / "b.md")
    touch(tmp_path / "d" / "notes.txt")
    c = touch(tmp_path / "e" / "deep" / "c.md")
    md = files_with_suffix([".MD"])
    got = resolve_inputs(["d/b.md", "d", str(tmp_path / "e" / "**" / "*.md")], md, what="novels", base=tmp_path)
    assert got == [b, a, c]
    with pytest.raises(NovelcraftError, match="^nope.md: inputs: no such file or directory$"):
        resolve_inputs(["nope.md"], md, what="novels", base=tmp_path)
    with pytest.raises(NovelcraftError, match=r"^\*\.epub: books: no novels here$"):
        resolve_inputs(["*.epub"], md, what="novels", base=tmp_path, step="books")


def test_manifest_records_and_forgets(tmp_path: Path) -> None:
    out = touch(tmp_path / "run" / "out.json")
    m = Manifest(tmp_path / "run" / "manifest.json")
    fp = fingerprint("recipe", [1, 2])
    assert fp == fingerprint("recipe", [1, 2]) != fingerprint("recipe", [2, 1])
    assert not m.done("book", fp)
    m.record("book", fp, [out], seconds=1.23456, settings={"a": 1})
    again = Manifest(tmp_path / "run" / "manifest.json")
    assert again.done("book", fp) and not again.done("book", fingerprint("other"))
    assert again.get("book").files == ["out.json"] and again.get("book").seconds == 1.2346
    out.unlink()
    assert not again.done("book", fp)  # a missing output is redone
    again.forget("book")
    assert Manifest(tmp_path / "run" / "manifest.json").get("book") is None


def test_an_unreadable_manifest_entry_is_redone(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"entries": {"good": {"fingerprint": "f"}, "bad": {"files": 3}}}), encoding="utf-8")
    m = Manifest(path)
    assert m.get("good") is not None and m.get("bad") is None
    path.write_text("{not json", encoding="utf-8")
    assert Manifest(path).entries == {}


def test_settings_diff_names_dotted_keys() -> None:
    assert settings_diff({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 5}, "e": 0}) == ["b.c", "b.d", "e"]


def test_store_appends_and_reads_back(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "llm" / "stage.jsonl")
    assert len(store) == 0 and store.get("h1") is None
    store.put_many([{"hash": "h1", "value": 1}, {"hash": "h2", "value": 2}])
    store.put_many([])
    reread = ResultStore(tmp_path / "llm" / "stage.jsonl")
    assert len(reread) == 2 and reread.get("h2") == {"hash": "h2", "value": 2}


def test_stage_stats_add_and_activity() -> None:
    a = StageStats(calls=2, prompt_tokens=10, seconds=0.5)
    a.add(StageStats(calls=1, reused=3, seconds=0.25))
    assert (a.calls, a.reused, a.prompt_tokens, a.seconds) == (3, 3, 10, 0.75)
    assert a.active and not StageStats().active


def test_run_stats_summary_write_and_read(tmp_path: Path) -> None:
    stats = RunStats(
        command="prep",
        name="demo",
        run_dir=str(tmp_path),
        seconds=2.0,
        items=[
            ItemStats(id="alice", counts={"scenes": 12}, flagged=1, flags={"summaries": 1}),
            ItemStats(id="bad", status="failed", error="bad.epub: ingest: not an EPUB"),
        ],
        stages={"summaries": StageStats(calls=12, flagged=1), "instructions": StageStats()},
        notes=["one more line"],
    )
    lines = stats.summary().splitlines()
    assert lines[0].startswith(f"prep {tmp_path}: 1/2 ok in 2.0s (1 flagged")
    assert lines[1:4] == [
        "  alice: 12 scenes; 1 flagged (summaries 1)",
        "  FAILED bad.epub: ingest: not an EPUB",
        "  one more line",
    ]
    assert len(lines) == 5 and lines[4].startswith("  summaries: 12 calls (0 reused)")
    assert [i.id for i in stats.failed] == ["bad"] and stats.flagged == 1
    stats.write()
    assert read_stats(tmp_path).items == stats.items
    with pytest.raises(NovelcraftError, match="stats: no readable stats"):
        read_stats(tmp_path / "nowhere")


def _record_many(path: str, prefix: str, n: int) -> None:
    m = Manifest(path)
    for i in range(n):
        m.record(f"{prefix}{i}", "fp", [])


def _append_many(path: str, prefix: str, n: int) -> None:
    store = ResultStore(path)
    for i in range(n):
        store.put_many([{"hash": f"{prefix}{i}", "key": "k", "value": "x" * 5000}])


def test_processes_sharing_a_manifest_and_a_store_lose_nothing(tmp_path):
    """Two processes recording entries of one manifest and appending to one store: every entry and every
    line arrives whole (a read-modify-write without the lock loses entries)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    jobs = [
        ctx.Process(target=f, args=(str(tmp_path / name), p, 40))
        for p in "ab"
        for f, name in ((_record_many, "manifest.json"), (_append_many, "store.jsonl"))
    ]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join(60)
        assert j.exitcode == 0
    assert sorted(Manifest(tmp_path / "manifest.json").entries) == sorted(f"{p}{i}" for p in "ab" for i in range(40))
    lines = (tmp_path / "store.jsonl").read_text().splitlines()
    assert len(lines) == 80 and all(json.loads(line)["value"] == "x" * 5000 for line in lines)
    assert len(ResultStore(tmp_path / "store.jsonl")) == 80

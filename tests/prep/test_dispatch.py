"""Stages 1-3 on executors: worker processes and a real local Ray instance write the same stage files as
the in-process run, leave a completion marker per book that a re-run trusts (and a changed setting does not),
and a worker killed mid-book has its book redone elsewhere with nothing lost or duplicated."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from novelcraft.executors import LEASE_FILE, read_lease
from novelcraft.prep.dispatch import DONE_FILE
from novelcraft.prep.recipe import PrepRecipe
from novelcraft.prep.run import run_prep

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["iron-heel.epub", "frankenstein.epub", "alice-in-wonderland.epub"]
HAS_RAY = importlib.util.find_spec("ray") is not None


def recipe(books_dir: Path, out: Path, name: str, **kw) -> PrepRecipe:
    data = {"name": name, "books": [str(books_dir / n) for n in NAMES], "output_dir": str(out), **kw}
    return PrepRecipe.model_validate(data)


def stage_files(run_dir: Path) -> dict[str, bytes]:
    """Every stage file of the run's books (manifests and markers hold timings, so they are left out)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.glob("books/*/0*"))}


@pytest.fixture(scope="module")
def inline(books_dir, tmp_path_factory):
    """The in-process run every executor is compared with."""
    r = recipe(books_dir, tmp_path_factory.mktemp("inline"), "inline")
    result = run_prep(r)
    assert not result.failed and result.stats.executor is None
    return r.run_dir, result


class Killer(threading.Thread):
    """Watches the run's lease files and SIGKILLs the first worker it sees holding a book."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.killed, self.stop = run_dir, None, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.killed is None:
            for lease in self.run_dir.glob(f"books/*/{LEASE_FILE}"):
                held = read_lease(lease)
                if held and held["pid"] != os.getpid():
                    os.kill(held["pid"], signal.SIGKILL)
                    self.killed = (lease.parent.name, held["pid"])
                    return
            time.sleep(0.005)


def prep_killing_a_worker(r: PrepRecipe):
    """``run_prep(r)`` while a :class:`Killer` kills the first worker seen holding a book."""
    killer = Killer(r.run_dir)
    killer.start()
    try:
        result = run_prep(r)
    finally:
        killer.stop.set()
    assert killer.killed is not None, "no lease was seen: the test killed nothing"
    return result, killer.killed


def check_same_as_inline(run_dir: Path, result, inline) -> None:
    ref_dir, ref = inline
    assert stage_files(run_dir) == stage_files(ref_dir)
    assert [(i.id, i.counts) for i in result.stats.items] == [(i.id, i.counts) for i in ref.stats.items]
    assert [b.model_dump() for b in result.books] == [b.model_dump() for b in ref.books]
    for book_dir in run_dir.glob("books/*"):
        assert (book_dir / DONE_FILE).is_file() and not (book_dir / LEASE_FILE).exists()
        assert not [f.name for f in book_dir.iterdir() if f.name.endswith(".tmp")]
        entries = json.loads((book_dir / "manifest.json").read_text())["entries"]
        assert sorted(entries) == ["book", "clean", "ingest"]


def test_worker_processes_write_the_inline_files_and_rerun_from_markers(books_dir, tmp_path, inline):
    r = recipe(books_dir, tmp_path, "two", executor={"workers": 2, "threads": 1})
    result = run_prep(r)
    check_same_as_inline(r.run_dir, result, inline)
    ex = result.stats.executor
    assert (ex.type, ex.workers, ex.units, ex.skipped, ex.redone, ex.lost) == ("local", 2, 3, 0, [], [])
    assert sum(w.units for w in ex.per_worker.values()) == 3
    assert all(i.worker and i.worker.split(":")[-1] != str(os.getpid()) for i in result.stats.items)
    assert "executor local x2, 3 units on" in result.stats.summary()

    again = run_prep(r)  # every marker is current: no unit is sent, no book is loaded until asked for
    assert (again.stats.executor.units, again.stats.executor.skipped) == (0, 3)
    assert all(i.stages_skipped == ["ingest", "clean", "book"] for i in again.stats.items)
    assert "3 finished before" in again.stats.summary()
    check_same_as_inline(r.run_dir, again, inline)

    changed = run_prep(r.model_copy(update={"max_chapters": 2}))  # the book stage's setting: markers are stale
    assert changed.stats.executor.units == 3
    assert all(i.stages_run == ["book"] and i.stages_skipped == ["ingest", "clean"] for i in changed.stats.items)
    assert all(b.meta.total_chapters == 2 for b in changed.books)


def test_a_worker_killed_mid_book_has_its_book_redone(books_dir, tmp_path, inline):
    r = recipe(books_dir, tmp_path, "killed", executor={"workers": 2, "threads": 1})
    result, (book, pid) = prep_killing_a_worker(r)
    check_same_as_inline(r.run_dir, result, inline)
    item = next(i for i in result.stats.items if Path(i.source).stem == book)
    assert item.tries == 2 and item.worker.split(":")[-1] != str(pid)
    assert result.stats.executor.redone == [book] and result.stats.executor.worker_deaths == 1
    assert "redone (try 2" in result.stats.summary()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="needs the ray package (extra ray)")
def test_ray_writes_the_inline_files_and_survives_a_killed_worker(books_dir, tmp_path, inline, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = recipe(books_dir, tmp_path, "ray", executor={"type": "ray", "workers": 2, "threads": 1})
    result, (book, _) = prep_killing_a_worker(r)
    check_same_as_inline(r.run_dir, result, inline)
    ex = result.stats.executor
    assert (ex.type, ex.units, ex.lost) == ("ray", 3, [])
    assert ex.redone == [book]
    again = run_prep(r)
    assert (again.stats.executor.units, again.stats.executor.skipped) == (0, 3)

"""``novelcraft.dataset.run``: ``run_compile`` over a run folder: files, determinism, skips, errors."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import yaml

from novelcraft.dataset import SplitConfig, load_compiled, read_jsonl, run_compile
from novelcraft.errors import NovelcraftError
from novelcraft.io import atomic_write_json
from novelcraft.models import Book
from novelcraft.prep.book import prep_book
from novelcraft.prep.recipe import PrepRecipe
from novelcraft.validate import has_errors, validate_paths

ROOT = Path(__file__).resolve().parents[2]


BOOKS = ROOT / "data" / "books"


def test_run_compile_writes_a_valid_deterministic_data_set(
    tmp_path: Path, alice: Book, counter, write_run_layout, recipe, tiny_book
) -> None:
    books_dir = write_run_layout(tmp_path / "runs", [alice, tiny_book("zzz_tiny", narrative=6)])
    r = recipe(tmp_path, books=[str(books_dir)], system_prompt={}, split={"by": "book", "validation_fraction": 0.5})
    result = run_compile(r, counter)
    run_dir = tmp_path / "datasets" / "t"
    assert result.run_dir == str(run_dir) and not result.skipped
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == [
        "README.md",
        "manifest.json",
        "recipe.resolved.yaml",
        "stats.json",
        "train.jsonl",
        "train.meta.jsonl",
        "validation.jsonl",
        "validation.meta.jsonl",
    ]
    assert json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))["details"]["inputs"] == [
        str(books_dir / alice.meta.book_id / "book.json"),
        str(books_dir / "zzz_tiny" / "book.json"),
    ]
    # by book: each book wholly in one split
    val_books = set(result.stats.split.validation_books)
    assert len(val_books) == 1
    assert {x.meta.book_id for x in result.validation} == val_books
    assert not {x.meta.book_id for x in result.train} & val_books

    # the written data set validates with the real tokenizer: no errors, no warnings
    issues = validate_paths([run_dir], counter=counter)
    assert issues == [], "\n".join(i.format() for i in issues)
    rows = read_jsonl(run_dir / "train.jsonl")
    metas = read_jsonl(run_dir / "train.meta.jsonl")
    assert len(rows) == len(metas) == len(result.train)
    assert rows[0] == result.train[0].record.model_dump() and set(rows[0]) == {"messages"}

    card = (run_dir / "README.md").read_text(encoding="utf-8")
    for needle in (
        "## Books",
        "| `alices_adventures_in_wonderland_carroll` |",
        "## Tokens per record",
        "Narrative:context ratio",
        "## Budget histogram",
        "## Split",
        "```yaml\nversion: 1\nkind: compile",
    ):
        assert needle in card
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    assert stats["details"]["dataset"]["records"] == {"train": len(result.train), "validation": len(result.validation)}
    assert yaml.safe_load((run_dir / "recipe.resolved.yaml").read_text(encoding="utf-8"))["kind"] == "compile"

    # unchanged inputs and recipe: skipped, same records read back
    again = run_compile(r, counter)
    assert again.skipped and again.model_dump(exclude={"skipped", "seconds"}) == result.model_dump(
        exclude={"skipped", "seconds"}
    )
    # forced: byte-identical data files
    data_files = [n for n in names if n not in ("stats.json", "manifest.json")]  # timings live there
    before = {n: (run_dir / n).read_bytes() for n in data_files}
    forced = run_compile(r, counter, force=True)
    assert not forced.skipped
    assert {n: (run_dir / n).read_bytes() for n in data_files} == before
    # another seed: another split, and the change is picked up without --force
    reseed = SplitConfig(by="book", validation_fraction=0.5, seed=1)
    reseeded = run_compile(r.model_copy(update={"split": reseed}), counter)
    assert not reseeded.skipped
    assert load_compiled(run_dir).stats.split.seed == 1


def test_stale_validation_split_is_removed(tmp_path: Path, counter, write_run_layout, recipe, tiny_book) -> None:
    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("one", narrative=6)])
    r = recipe(tmp_path, books=[str(books_dir)], split={"by": "scene", "validation_fraction": 0.3})
    run_compile(r, counter)
    run_dir = tmp_path / "datasets" / "t"
    assert (run_dir / "validation.jsonl").is_file()
    result = run_compile(r.model_copy(update={"split": SplitConfig(validation_fraction=0)}), counter)
    assert result.validation == [] and not (run_dir / "validation.jsonl").exists()
    assert not (run_dir / "validation.meta.jsonl").exists()
    assert "validation.jsonl" not in (run_dir / "README.md").read_text(encoding="utf-8")


def test_run_compile_errors_name_the_file(tmp_path: Path, counter, tiny_book, recipe) -> None:
    bad = tmp_path / "book.json"
    bad.write_text('{"meta": {"book_id": "x"}, "scenes": []}', encoding="utf-8")
    with pytest.raises(NovelcraftError) as exc:
        run_compile(recipe(tmp_path, books=[str(bad)]), counter)
    assert str(exc.value).startswith(f"{bad}: load: not a valid Book JSON: meta.title: Field required")

    unfilled = tiny_book("raw", narrative=2, reference=0)
    unfilled.scenes[0].instruction = None
    f = atomic_write_json(tmp_path / "raw.json", unfilled)
    with pytest.raises(NovelcraftError, match=f"^{f}: compile: book raw: scene 1: missing instruction"):
        run_compile(recipe(tmp_path, books=[str(f)]), counter)


@pytest.mark.slow
def test_two_real_books_with_reference_scenes(
    tmp_path: Path, alice: Book, counter, fill, write_run_layout, recipe
) -> None:
    iron = fill(prep_book(BOOKS / "iron-heel.epub", PrepRecipe(name="t", books=["x"]), counter))
    assert any(s.is_reference for s in iron.scenes)
    books_dir = write_run_layout(tmp_path / "runs", [alice, iron])
    r = recipe(
        tmp_path,
        books=[str(books_dir)],
        system_prompt={},
        reference_scenes="keep",
        split={"by": "book", "validation_fraction": 0.5, "seed": 3},
    )
    result = run_compile(r, counter)
    records = result.train + result.validation
    refs = [x for x in records if x.meta.is_reference]
    iron_refs = [s for s in iron.scenes if s.is_reference]
    assert len(refs) == len(iron_refs) - sum(1 for d in result.stats.dropped if d.is_reference)
    assert [x.meta.progress_percent for x in refs][0] == 0
    assert all(x.meta.tokens <= 4096 for x in records)
    assert not has_errors(validate_paths([tmp_path / "datasets" / "t"], counter=counter))


def test_a_data_set_without_records_is_an_error(tmp_path: Path, counter, tiny_book, recipe) -> None:
    book = tiny_book("empty", narrative=3, reference=1)
    book.meta.world_context = None
    f = atomic_write_json(tmp_path / "empty.json", book)
    expected = r"compile: no records: all 4 scenes were dropped \(dropped scenes: 3 missing, 1 reference \(recipe\)\)"
    with pytest.raises(NovelcraftError, match=expected):
        run_compile(recipe(tmp_path, books=[str(f)], on_missing="drop"), counter)
    assert not (tmp_path / "datasets" / "t").exists()


def test_worker_processes_count_the_same_data_set(
    tmp_path: Path, alice: Book, counter, write_run_layout, recipe, tiny_book
) -> None:
    """Records counted on two worker processes: the same data set bytes and data card as in-process, and a
    changed executor alone does not make a finished data set stale."""
    books_dir = write_run_layout(tmp_path / "runs", [alice, tiny_book("zzz_tiny", narrative=6), tiny_book("b2")])
    kw = {"books": [str(books_dir)], "system_prompt": {}, "split": {"by": "book", "validation_fraction": 0.34}}
    one = run_compile(recipe(tmp_path / "one", **kw), counter)
    two = run_compile(recipe(tmp_path / "two", executor={"workers": 2, "threads": 1}, **kw), counter)
    a, b = tmp_path / "one" / "datasets" / "t", tmp_path / "two" / "datasets" / "t"
    for name in ("train.jsonl", "train.meta.jsonl", "validation.jsonl", "validation.meta.jsonl", "README.md"):
        same_place = (a / name).read_bytes().replace(str(tmp_path / "one").encode(), str(tmp_path / "two").encode())
        assert same_place == (b / name).read_bytes(), name  # the card's recipe names its output_dir
    assert one.stats.model_dump() == two.stats.model_dump()
    ex = json.loads((b / "stats.json").read_text(encoding="utf-8"))["executor"]
    assert (ex["type"], ex["workers"], ex["units"], ex["lost"]) == ("local", 2, 3, [])
    again = run_compile(recipe(tmp_path / "two", **kw), counter)  # now in-process: still current
    assert again.skipped


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray package (extra ray)")
def test_ray_counts_the_same_data_set(
    tmp_path: Path, alice: Book, counter, write_run_layout, recipe, tiny_book, monkeypatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    books_dir = write_run_layout(tmp_path / "runs", [alice, tiny_book("zzz_tiny", narrative=6)])
    kw = {"books": [str(books_dir)], "system_prompt": {}}
    one = run_compile(recipe(tmp_path / "one", **kw), counter)
    on_ray = run_compile(recipe(tmp_path / "ray", executor={"type": "ray", "workers": 2, "threads": 1}, **kw), counter)
    assert one.stats.model_dump() == on_ray.stats.model_dump()
    for name in ("train.jsonl", "train.meta.jsonl"):
        a, b = (tmp_path / d / "datasets" / "t" / name for d in ("one", "ray"))
        assert a.read_bytes() == b.read_bytes(), name

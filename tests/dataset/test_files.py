"""``novelcraft.dataset.files``: which Book JSON files are read, and the HF export."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from novelcraft.dataset import resolve_book_files, run_compile
from novelcraft.errors import NovelcraftError

HAS_DATASETS = importlib.util.find_spec("datasets") is not None


def test_resolve_book_files_picks_the_final_book(tmp_path: Path, write_run_layout, tiny_book) -> None:
    books_dir = write_run_layout(tmp_path, [tiny_book("aaa"), tiny_book("bbb"), tiny_book("ccc")])
    (books_dir / "ccc" / "book.json").unlink()  # no final Book: the latest numbered stage holding a Book
    found = resolve_book_files([str(books_dir)])
    expected = ["aaa/book.json", "bbb/book.json", "ccc/03_book.json"]
    assert found == [books_dir / name for name in expected]
    assert resolve_book_files([str(books_dir / "aaa" / "03_book.json")]) == [books_dir / "aaa" / "03_book.json"]
    assert resolve_book_files([str(books_dir / "*" / "book.json")]) == found[:2]
    assert resolve_book_files([str(books_dir)], ["[0-9][0-9]_*.json"])[0] == books_dir / "aaa" / "03_book.json"
    with pytest.raises(NovelcraftError, match="^nope: inputs: no such file or directory$"):
        resolve_book_files(["nope"])
    with pytest.raises(NovelcraftError, match="inputs: no Book JSON files"):
        resolve_book_files([str(tmp_path / "*.none")])


@pytest.mark.skipif(not HAS_DATASETS, reason="the 'datasets' package is not installed (export format 'hf')")
def test_hf_dataset_round_trip(tmp_path: Path, counter, write_run_layout, recipe, tiny_book) -> None:
    import datasets

    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("hf_a", narrative=6), tiny_book("hf_b", narrative=3)])
    r = recipe(
        tmp_path,
        books=[str(books_dir)],
        reference_scenes="keep",
        export={"formats": ["jsonl", "hf"]},
        split={"by": "book", "validation_fraction": 0.5},
    )
    result = run_compile(r, counter)
    dd = datasets.load_from_disk(str(tmp_path / "datasets" / "t" / "hf_dataset"))
    assert set(dd) == {"train", "validation"}
    for split in ("train", "validation"):
        recs = getattr(result, split)
        assert len(dd[split]) == len(recs) > 0
        for row, rec in zip(dd[split], recs):
            assert row["messages"] == [m.model_dump() for m in rec.record.messages]
            assert {k: row[k] for k in rec.meta.model_dump()} == rec.meta.model_dump()
    assert any(dd["train"]["is_reference"]) or any(dd["validation"]["is_reference"])
    # a forced re-run replaces the folder in place
    run_compile(r, counter, force=True)
    assert len(datasets.load_from_disk(str(tmp_path / "datasets" / "t" / "hf_dataset"))["train"]) == len(result.train)


def test_hf_export_without_datasets_is_a_clear_error(
    tmp_path: Path, counter, monkeypatch, write_run_layout, recipe, tiny_book
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("nohf")])
    r = recipe(tmp_path, books=[str(books_dir)], export={"formats": ["jsonl", "hf"]})
    with pytest.raises(NovelcraftError, match="export: export format 'hf' needs the 'datasets' package"):
        run_compile(r, counter)

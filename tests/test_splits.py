"""``novelcraft.dataset.split``: the seeded train/validation split."""

from __future__ import annotations

import random

import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.splits import SplitConfig, SplitSummary, split_records


def test_split_by_scene_is_seeded_and_order_independent() -> None:
    keys = [f"b{i % 3}/{i}" for i in range(50)]
    books = [k.split("/")[0] for k in keys]
    cfg = SplitConfig(by="scene", validation_fraction=0.2, seed=7)
    held, summary = split_records(keys, books, cfg)
    assert sum(held) == 10 and summary.effective_by == "scene"
    assert split_records(keys, books, cfg)[0] == held
    other, _ = split_records(keys, books, SplitConfig(by="scene", validation_fraction=0.2, seed=8))
    assert other != held
    # the held-out set does not depend on the order the records arrive in
    order = list(range(50))
    random.Random(1).shuffle(order)
    shuffled, _ = split_records([keys[i] for i in order], [books[i] for i in order], cfg)
    assert {keys[i] for i, h in zip(order, shuffled) if h} == {k for k, h in zip(keys, held) if h}


def test_split_by_book() -> None:
    keys = [f"book{b}/{s}" for b in range(5) for s in range(1, 4)]
    books = [k.split("/")[0] for k in keys]
    held, summary = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.2, seed=0))
    assert len(summary.validation_books) == 1
    assert {b for b, h in zip(books, held) if h} == set(summary.validation_books)
    assert sum(held) == 3
    # never every book, always at least one when the fraction is above zero
    _, most = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.99))
    assert len(most.validation_books) == 4
    _, least = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.01))
    assert len(least.validation_books) == 1
    none, _ = split_records(keys, books, SplitConfig(by="book", validation_fraction=0))
    assert not any(none)


def test_split_with_one_book() -> None:
    keys = [f"only/{i}" for i in range(10)]
    books = ["only"] * 10
    held, summary = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.3))
    assert sum(held) == 3 and summary.effective_by == "scene" and "fell back" in (summary.note or "")
    with pytest.raises(NovelcraftError, match="split.by is 'book' but only 1 book has records"):
        split_records(keys, books, SplitConfig(by="book", validation_fraction=0.3, when_one_book="error"))
    assert split_records(["only/1"], ["only"], SplitConfig(by="scene", validation_fraction=0.5))[0] == [False]


def test_summary_says_what_was_held_out() -> None:
    held, s = split_records(["a/1", "a/2"], ["a", "a"], SplitConfig(by="scene", validation_fraction=0.1))
    assert held.count(True) == 1 and (s.records, s.validation_records, s.books) == (2, 1, 1)
    assert s.describe() == (
        "by scene: 1 of 2 records (50%) held out for validation "
        "(asked: 0.1; at least one record is held out when the fraction is above 0)"
    )
    keys = [f"b{i % 5}/{i}" for i in range(15)]
    books = [k.split("/")[0] for k in keys]
    _, by_book = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.2))
    assert by_book.describe() == "by book: 1 of 5 books, 3 of 15 records (20%) held out for validation (asked: 0.2)"
    _, few = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.01))
    assert few.describe().endswith("(asked: 0.01; at least one book is held out when the fraction is above 0)")
    _, most = split_records(["a/1", "a/2"], ["a", "a"], SplitConfig(by="book", validation_fraction=0.99))
    assert most.describe() == (
        "by scene (asked: by book): 1 of 2 records (50%) held out for validation "
        "(asked: 0.99; at least one record stays in training)"
    )
    _, none = split_records(["a/1", "a/2"], ["a", "a"], SplitConfig(by="scene", validation_fraction=0))
    assert none.describe() == "by scene: nothing held out for validation (asked: 0)"


def test_summary_of_an_older_data_set_keeps_the_fraction() -> None:
    old = SplitSummary(by="scene", effective_by="scene", validation_fraction=0.1, seed=0)
    assert old.describe() == "by scene, validation fraction 0.1"

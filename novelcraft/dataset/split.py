"""The seeded train/validation split (pure)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from ..errors import NovelcraftError
from .recipe import SplitConfig
from .stats import SplitSummary, round_half_up

log = logging.getLogger(__name__)


def split_records(
    keys: Sequence[str],
    book_ids: Sequence[str],
    config: SplitConfig,
) -> tuple[list[bool], SplitSummary]:
    """Which records go to validation (True), deterministically from ``config.seed``.

    ``keys`` are the records' unique ids (their order is the output order), ``book_ids`` the book of
    each record. Pure: the same inputs always give the same split.
    """
    if len(keys) != len(book_ids):
        raise ValueError("keys and book_ids differ in length")
    books = sorted(set(book_ids))
    summary = SplitSummary(
        by=config.by,
        effective_by=config.by,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
        records=len(keys),
        books=len(books),
    )
    held = _held_out(keys, book_ids, books, config, summary)
    summary.validation_records = sum(held)
    return held, summary


def _held_out(
    keys: Sequence[str], book_ids: Sequence[str], books: list[str], config: SplitConfig, summary: SplitSummary
) -> list[bool]:
    n = len(keys)
    if config.validation_fraction == 0 or n == 0:
        return [False] * n
    by = config.by
    if by == "book" and len(books) < 2:
        if config.when_one_book == "error":
            raise NovelcraftError(
                f"split.by is 'book' but only {len(books)} book has records; add books, set split.by=scene, "
                "split.validation_fraction=0 or split.when_one_book=scene",
                step="split",
            )
        by = "scene"
        summary.effective_by = "scene"
        summary.note = "only one book: split.by=book fell back to a scene split (split.when_one_book=scene)"
        log.warning("split: %s", summary.note)
    rng = random.Random(config.seed)
    if by == "book":
        k = min(max(1, round_half_up(config.validation_fraction * len(books))), len(books) - 1)
        order = list(books)
        rng.shuffle(order)
        held = set(order[:k])
        summary.validation_books = sorted(held)
        return [b in held for b in book_ids]
    if n < 2:
        summary.note = (summary.note + "; " if summary.note else "") + "a single record: nothing held out"
        return [False] * n
    k = min(max(1, round_half_up(config.validation_fraction * n)), n - 1)
    # sort the keys first so the draw does not depend on the order books were listed in
    ranked = sorted(range(n), key=lambda i: keys[i])
    held_idx = set(rng.sample(ranked, k))
    return [i in held_idx for i in range(n)]

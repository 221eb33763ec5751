"""The seeded train/validation split and the token summaries of a data set's records, shared by the data-set
builders (``dataset`` and ``continuation``): :class:`SplitConfig` (the recipe section), :func:`split_records`
(pure), :class:`SplitSummary` (what was held out) and :class:`TokenSummary`."""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from .errors import NovelcraftError
from .strict import Record, Strict


def round_half_up(x: float) -> int:
    """``x`` rounded to the nearest integer, halves up (2.5 -> 3), the same on every platform."""
    return int(math.floor(x + 0.5))


def percent(part: int, whole: int) -> int:
    """``100 * part / whole`` rounded half up, in integers (0 when ``whole`` is 0)."""
    return (200 * part + whole) // (2 * whole) if whole else 0


class TokenSummary(Record):
    """min / median / p95 (nearest rank) / max / mean / total of a list of token counts."""

    count: int
    min: int = 0
    median: float = 0.0
    p95: int = 0
    max: int = 0
    mean: float = 0.0
    total: int = 0

    @classmethod
    def of(cls, values: Sequence[int]) -> TokenSummary:
        """The summary of ``values`` (all zeros with ``count=0`` when there are none)."""
        if not values:
            return cls(count=0)
        s = sorted(values)
        p95 = s[max(0, math.ceil(0.95 * len(s)) - 1)]
        return cls(
            count=len(s),
            min=s[0],
            median=float(statistics.median(s)),
            p95=p95,
            max=s[-1],
            mean=round(sum(s) / len(s), 1),
            total=sum(s),
        )


class SplitConfig(Strict):
    """Seeded train/validation split.

    ``by: book`` holds out whole books (round(fraction x books), at least 1, never all);
    ``by: scene`` holds out records drawn from every book. With a single book, ``by: book`` cannot
    hold anything out: ``when_one_book: scene`` falls back to a scene split (logged and recorded in
    stats.json and the data card), ``error`` refuses.
    """

    by: Literal["book", "scene"] = "book"
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0
    when_one_book: Literal["scene", "error"] = "scene"


class SplitSummary(Record):
    """How the records were split: what the recipe asked and what was held out."""

    by: Literal["book", "scene"]
    effective_by: Literal["book", "scene"]
    validation_fraction: float
    seed: int
    validation_books: list[str] = Field(default_factory=list)
    note: str | None = None
    records: int | None = Field(None, description="records split (None in data sets compiled before it was kept)")
    validation_records: int = Field(0, description="records held out for validation")
    books: int = Field(0, description="books with records")

    def describe(self) -> str:
        """What was held out, e.g. ``by scene: 1 of 2 records (50%) held out for validation (asked: 0.1; ...)``.

        The fraction is rounded to whole records (whole books for a book split), at least one is held out
        when the fraction is above 0 and at least one stays in training, so the share held out can be far
        from the fraction asked for on a small data set.
        """
        how = f"by {self.effective_by}" + (f" (asked: by {self.by})" if self.by != self.effective_by else "")
        asked = f"{self.validation_fraction:g}"
        if self.records is None:
            return f"{how}, validation fraction {asked}"
        if not self.validation_records:
            return f"{how}: nothing held out for validation (asked: {asked})"
        pct = percent(self.validation_records, self.records)
        share = f"{self.validation_records} of {self.records} records ({pct}%)"
        if self.effective_by == "book":
            unit, held, units = "book", len(self.validation_books), self.books
            share = f"{held} of {units} books, {share}"
        else:
            unit, held, units = "record", self.validation_records, self.records
        wanted = round_half_up(self.validation_fraction * units)
        rule = ""
        if held > wanted:
            rule = f"; at least one {unit} is held out when the fraction is above 0"
        elif held < wanted:
            rule = f"; at least one {unit} stays in training"
        return f"{how}: {share} held out for validation (asked: {asked}{rule})"


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

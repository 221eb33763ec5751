"""Human baseline: the same metrics on human novels, summarised as ranges to read generated figures against.

:func:`build_human_baseline` scores each book with the other books as its regurgitation references
(leave-one-out: the chance overlap between unrelated human novels), then keeps, per metric, the
min / mean / max over books and, per curve bin, the same three numbers. The baseline of the sample
books in ``data/books`` ships with the package (:func:`load_human_baseline`) and is kept in
``benchmarks/results/human_baseline.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from .. import __version__
from ..errors import NovelcraftError
from ..models import Record
from .embed import Embedder
from .novel import Novel
from .score import NovelScores, reference_index_for, score_novel

log = logging.getLogger(__name__)

PACKAGED_BASELINE = "resources/bench/human_baseline.json"


class RangeStat(Record):
    """min / mean / max of one metric over the human books, and how many books had a value."""

    min: float
    mean: float
    max: float
    n: int


class CurveRange(Record):
    """Per progress bin, min / mean / max of one curve metric over the human books (None: no book had a value)."""

    min: list[float | None]
    mean: list[float | None]
    max: list[float | None]


class HumanBaseline(Record):
    """Per-book scores (per-scene rows dropped) and their ranges."""

    version: Literal[1] = 1
    created: str
    novelcraft_version: str
    embedder: str | None = None
    bins: int
    books: list[NovelScores] = Field(default_factory=list)
    ranges: dict[str, RangeStat] = Field(default_factory=dict)
    curve_ranges: dict[str, CurveRange] = Field(default_factory=dict)


def summarize_books(books: Sequence[NovelScores], *, embedder: str | None = None) -> HumanBaseline:
    """Ranges over ``books`` (already scored); per-scene rows are dropped to keep the file small."""
    if not books:
        raise NovelcraftError("a human baseline needs at least one book", step="bench.baseline")
    bins = books[0].bins
    ranges: dict[str, RangeStat] = {}
    keys = dict.fromkeys(k for b in books for k in b.summary)
    for key in keys:
        vals = [b.summary.get(key) for b in books]
        vals_f = [float(v) for v in vals if v is not None]
        if vals_f:
            ranges[key] = RangeStat(min=min(vals_f), mean=sum(vals_f) / len(vals_f), max=max(vals_f), n=len(vals_f))
    curve_ranges: dict[str, CurveRange] = {}
    for key in dict.fromkeys(k for b in books for k in b.curves):
        lo: list[float | None] = []
        mid: list[float | None] = []
        hi: list[float | None] = []
        for i in range(bins):
            col = [v for v in (b.curves[key][i] for b in books if key in b.curves) if v is not None]
            lo.append(min(col) if col else None)
            mid.append(sum(col) / len(col) if col else None)
            hi.append(max(col) if col else None)
        curve_ranges[key] = CurveRange(min=lo, mean=mid, max=hi)
    return HumanBaseline(
        created=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        novelcraft_version=__version__,
        embedder=embedder,
        bins=bins,
        books=[b.model_copy(update={"scenes": []}) for b in books],
        ranges=ranges,
        curve_ranges=curve_ranges,
    )


def build_human_baseline(novels: Sequence[Novel], *, embedder: Embedder | None = None, bins: int = 10) -> HumanBaseline:
    """Score each human novel (leave-one-out references) and summarise the ranges."""
    scores: list[NovelScores] = []
    for i, nv in enumerate(novels):
        others = [x for j, x in enumerate(novels) if j != i]
        refs = reference_index_for(others) if others else None
        scores.append(score_novel(nv, references=refs, embedder=embedder, bins=bins))
    return summarize_books(scores, embedder=getattr(embedder, "name", None) if embedder is not None else None)


def load_human_baseline(path: str | Path | None = None) -> HumanBaseline:
    """A baseline JSON file, or (``path=None``) the one packaged with novelcraft."""
    try:
        if path is None:
            text = resources.files("novelcraft").joinpath(PACKAGED_BASELINE).read_text(encoding="utf-8")
            where: str | Path = f"novelcraft:{PACKAGED_BASELINE}"
        else:
            text = Path(path).read_text(encoding="utf-8")
            where = path
    except (OSError, FileNotFoundError) as exc:
        raise NovelcraftError(f"cannot read the human baseline ({exc})", path=path, step="bench.baseline") from None
    try:
        return HumanBaseline.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise NovelcraftError(
            f"not a human baseline file ({str(exc).splitlines()[0]})", path=where, step="bench.baseline"
        ) from None

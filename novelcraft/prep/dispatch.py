"""Stages 1-3 of many books on an executor: the book as the unit of work, and per-book completion markers.

A book's unit runs :func:`~novelcraft.prep.stages.prep_one` in its own folder (``books/<stem>/``), under the
worker's lease (``.running.json``), and ends by writing ``done.json``: the fingerprint of its last stage and
its stats line. A re-run reads the markers first and sends only the books whose marker is missing or stale
(a changed source, recipe section, tokenizer or novelcraft version), so a run of thousands of books resumes
without loading the finished ones. A unit redone after its worker died starts by removing the temporary
files the dead worker left (a write is atomic: a file is either whole or a ``.NAME.XXXX.tmp`` leftover), and
the stages its manifest records as finished are not redone.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import NovelcraftError
from ..executors.base import LEASE_FILE, Executor, Unit, UnitContext, UnitResult
from ..io import atomic_write_json, sha256_file
from ..models import Book
from ..runs import Manifest
from ..stats import ItemStats
from ..strict import Record
from ..tokens import TokenCounter
from .recipe import PrepRecipe
from .stages import prep_one, stage_fingerprints

#: the completion marker of a book's stages 1-3, in its folder.
DONE_FILE = "done.json"
STAGES = ("ingest", "clean", "book")
_TEMP = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


class DoneMarker(Record):
    """``books/<stem>/done.json``: stages 1-3 of the book are finished from ``fingerprint`` (that of the
    book stage); ``item`` is the book's line of the stats record, as the run that finished it wrote it."""

    fingerprint: str
    item: ItemStats


@dataclasses.dataclass(frozen=True)
class BookJob:
    """One book of the run: its source, its folder, the fingerprint its finished stages must carry, and the
    source's SHA-256 (hashed once, here; None when the file cannot be read)."""

    source: Path
    book_dir: Path
    fingerprint: str | None
    source_sha: str | None = None


@dataclasses.dataclass
class BookDone:
    """What a book's unit returns: its stats line, and the Book when the unit ran in the driver's process."""

    item: ItemStats
    book: Book | None = None


def book_jobs(sources: Sequence[Path], run_dir: Path, recipe: PrepRecipe, counter_name: str) -> list[BookJob]:
    """A job per source; folders are named by file stem, made unique in order (``stem``, ``stem-2``...)."""
    jobs: list[BookJob] = []
    stems: dict[str, int] = {}
    for source in sources:
        stem = source.stem
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f"{stem}-{stems[stem]}"
        override = recipe.clean.override_for(str(source))
        try:
            sha = sha256_file(source)
        except OSError:
            jobs.append(BookJob(source, run_dir / "books" / stem, None))  # unreadable: its unit says why
            continue
        fp = stage_fingerprints(sha, recipe, counter_name, override.encoding if override else None)[-1]
        jobs.append(BookJob(source, run_dir / "books" / stem, fp, sha))
    return jobs


def finished_item(job: BookJob) -> ItemStats | None:
    """The stats line of a book an earlier run finished with this fingerprint (files in place), else None."""
    if job.fingerprint is None:
        return None
    try:
        marker = DoneMarker.model_validate_json((job.book_dir / DONE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    manifest = Manifest(job.book_dir / "manifest.json")
    if marker.fingerprint != job.fingerprint or not manifest.done("book", job.fingerprint):
        return None
    return marker.item.model_copy(
        update={"stages_run": [], "stages_skipped": list(STAGES), "seconds": {}, "worker": None, "tries": 1}
    )


def remove_leftovers(book_dir: Path) -> None:
    """Delete the temporary files a killed writer left in ``book_dir`` (never a finished file)."""
    if book_dir.is_dir():
        for f in book_dir.iterdir():
            if _TEMP.match(f.name) and f.is_file():
                f.unlink(missing_ok=True)


def prep_unit(ctx: UnitContext, shared: tuple[PrepRecipe, TokenCounter, bool, bool], job: BookJob) -> BookDone:
    """The unit of work of one book: stages 1-3, then its completion marker (see the module docs)."""
    recipe, counter, force, keep_book = shared
    if job.fingerprint is None:
        error = str(NovelcraftError("cannot read the file", path=job.source, step="ingest"))
        item = ItemStats(id=job.source.stem, source=str(job.source), status="failed", error=error)
        return BookDone(_placed(item, ctx))
    remove_leftovers(job.book_dir)
    try:
        book, item = prep_one(
            job.source,
            recipe,
            counter,
            job.book_dir,
            force=force,
            on_stage=lambda name: ctx.report("stages"),
            source_sha=job.source_sha,
        )
    except NovelcraftError as exc:
        item = ItemStats(id=job.source.stem, source=str(job.source), status="failed", error=str(exc))
        return BookDone(_placed(item, ctx))
    atomic_write_json(job.book_dir / DONE_FILE, DoneMarker(fingerprint=job.fingerprint, item=item))
    return BookDone(_placed(item, ctx), book if keep_book else None)


def _placed(item: ItemStats, ctx: UnitContext) -> ItemStats:
    item.tries = ctx.tries
    return item


def run_books(
    jobs: Sequence[BookJob],
    recipe: PrepRecipe,
    counter: TokenCounter,
    executor: Executor,
    *,
    force: bool,
    progress: bool,
    inline: bool,
) -> list[tuple[BookJob, BookDone]]:
    """Stages 1-3 of every job on ``executor`` (finished books skipped unless ``force``), in job order."""
    from tqdm.auto import tqdm

    done: dict[int, BookDone] = {}
    todo: list[int] = []
    for i, job in enumerate(jobs):
        item = None if force else finished_item(job)
        if item is not None:
            done[i] = BookDone(item)
        else:
            todo.append(i)
    executor.stats().skipped += len(done)
    bar = tqdm(total=len(jobs), initial=len(done), desc="prep", unit="book", disable=not progress)
    redone = [0]

    def on_result(result: UnitResult) -> None:
        if result.tries > 1:
            redone[0] += 1
        bar.update(1)
        if not inline:
            bar.set_postfix_str(f"{executor.name}, {redone[0]} redone", refresh=True)

    units = [Unit(str(jobs[i].book_dir.name), jobs[i], str(jobs[i].book_dir / LEASE_FILE)) for i in todo]
    for job in (jobs[i] for i in todo):
        job.book_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = executor.map(prep_unit, (recipe, counter, force, inline), units, on_result=on_result)
    finally:
        bar.close()
    for i, result in zip(todo, results):
        done[i] = _outcome(jobs[i], result, inline)
    return [(job, done[i]) for i, job in enumerate(jobs)]


def _outcome(job: BookJob, result: UnitResult, inline: bool) -> BookDone:
    if not result.ok:  # lost: its worker kept dying
        return BookDone(ItemStats(id=job.source.stem, source=str(job.source), status="failed", error=result.error))
    value: BookDone = result.value
    if not inline:
        value.item.worker = result.worker
    return value


def load_book_file(job: BookJob) -> Book:
    """The Book a finished unit wrote (``03_book.json``)."""
    path = job.book_dir / "03_book.json"
    try:
        return Book.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NovelcraftError(f"cannot read the finished book ({type(exc).__name__})", path=path, step="book") from None

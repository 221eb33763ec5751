"""``novelcraft prep``: run the data-prep stages over many books, resumably, under one run directory.

Layout of a run (``OUTPUT_DIR/NAME``)::

    recipe.resolved.yaml          the recipe with every default filled in
    stats.json                    per-book and total statistics of the last run
    books/<stem>/01_ingest.json   paragraphs with their structural signals, and the book's navigation
                                  (+ 01_ingest.md to read, 01_ingest.meta.json: what the file says of itself)
    books/<stem>/02_clean.json    chapters (with their containers) and reference sections
                                  (+ 02_clean.md to read, 02_structure.md: the outline and every decision)
    books/<stem>/03_book.json     the Book JSON (blocks and scenes)
    books/<stem>/manifest.json    fingerprint of each finished stage
    books/<stem>/done.json        stages 1-3 of the book are finished (see :mod:`novelcraft.prep.dispatch`)

Every file is written atomically and a stage is recorded in the manifest only after its file is in
place, so a killed run leaves no file that looks finished; a re-run skips stages whose fingerprint
(source file, recipe section, novelcraft version) is unchanged. Stages 1-3 run a book per unit on the
recipe's ``executor`` (this process, worker processes, or Ray tasks: the files are the same); stages 4-7
batch every book's requests from this process to the engine (one server, or a pool of them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NovelcraftError
from ..executors.base import make_executor
from ..models import Book
from ..recipes import write_resolved_recipe
from ..runs import files_with_suffix, resolve_inputs
from ..stats import ItemStats, RunStats, stop_reason
from ..tokens import TokenCounter, load_token_counter
from .dispatch import BookJob, book_jobs, load_book_file, run_books
from .ingest import SUPPORTED_SUFFIXES
from .recipe import PrepRecipe
from .stages import book_counts, prep_one, stage_fingerprints

if TYPE_CHECKING:
    from ..llm.types import Engine

log = logging.getLogger(__name__)

__all__ = ["PrepResult", "book_counts", "prep_one", "resolve_book_paths", "run_prep", "stage_fingerprints"]


class PrepResult:
    """What ``run_prep`` produced: the stats record (also in ``stats.json``) and the finished books.

    ``books`` are read from their ``03_book.json`` (or ``book.json``) files on first use when the run did not
    hold them in memory (books prepared by other worker processes, or finished by an earlier run).
    """

    def __init__(self, stats: RunStats, books: Sequence[Book] | None = None, jobs: Sequence[BookJob] = ()) -> None:
        self.stats = stats
        self._books = list(books) if books is not None else None
        self._jobs = list(jobs)

    @property
    def books(self) -> list[Book]:
        """The finished books, in source order (failed books left out)."""
        if self._books is None:
            self._books = [load_book_file(job) for job in self._jobs]
        return self._books

    @property
    def failed(self) -> list[ItemStats]:
        """The books that failed (status ``failed``), with their errors."""
        return self.stats.failed

    def summary(self) -> str:
        """The printed summary of the run (:meth:`~novelcraft.stats.RunStats.summary`)."""
        return self.stats.summary()


def resolve_book_paths(patterns: Sequence[str], base: Path | None = None) -> list[Path]:
    """Files, folders (their supported books, sorted) and glob patterns -> unique book paths in order."""
    return resolve_inputs(patterns, files_with_suffix(SUPPORTED_SUFFIXES), what="books (.epub, .txt, .md)", base=base)


def run_prep(
    recipe: PrepRecipe,
    *,
    counter: TokenCounter | None = None,
    engine: Engine | None = None,
    force: bool = False,
    progress: bool = True,
) -> PrepResult:
    """Run every prep stage of the recipe over its books and write stats; see the module docs.

    Stages 1-3 run per book; books that fail there are reported in the result (status ``failed``) while
    the others complete. When the recipe has an ``llm`` section, stages 4-7 then run over all good books
    together (batched) with ``engine`` (built from the recipe when not given); an LLM failure raises a
    :class:`~novelcraft.errors.NovelcraftError` after writing stats, and finished answers stay on disk
    for the next run. The CLI exits non-zero when any book failed.
    """
    t0 = time.perf_counter()
    sources = resolve_book_paths(recipe.books)
    run_dir = recipe.run_dir
    if run_dir.exists() and not run_dir.is_dir():
        raise NovelcraftError("the run directory is a file, not a folder", path=run_dir, step="output_dir")
    counter = counter or load_token_counter(recipe.tokenizer)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NovelcraftError(
            f"cannot create the run directory ({exc.strerror or exc})", path=run_dir, step="output_dir"
        ) from None
    write_resolved_recipe(recipe, run_dir)
    stats = RunStats(
        command="prep",
        name=recipe.name,
        run_dir=str(run_dir),
        tokenizer=counter.name,
        engine=recipe.llm.identity() if recipe.llm else None,
    )
    jobs = book_jobs(sources, run_dir, recipe, counter.name)
    inline = recipe.executor.inline
    executor = make_executor(recipe.executor)
    try:
        outcomes = run_books(jobs, recipe, counter, executor, force=force, progress=progress, inline=inline)
    finally:
        executor.close()
        if not inline:
            stats.executor = executor.stats()
    for _, out in outcomes:
        if out.item.status == "failed":
            log.warning("skipped: %s", out.item.error)  # reported again, as an error, with the run's summary
        stats.items.append(out.item)
    good = [(job, out) for job, out in outcomes if out.item.status != "failed"]
    result = PrepResult(stats, jobs=[job for job, _ in good])
    if all(out.book is not None for _, out in good):
        result = PrepResult(stats, books=[out.book for _, out in good if out.book is not None])
    try:
        if recipe.llm is not None and good:
            done = [(out.book or load_book_file(job), job.book_dir, out.item) for job, out in good]
            books = _run_llm(recipe, done, counter, engine, run_dir, stats, force=force, progress=progress)
            result = PrepResult(stats, books=books)
    except BaseException as exc:
        # stats.json must not read as a finished run: the books' stage 1-3 lines are true, the LLM stages are not
        stats.error = stop_reason(exc)
        raise
    finally:
        stats.seconds = round(time.perf_counter() - t0, 3)
        stats.write(run_dir)
    return result


def _run_llm(
    recipe: PrepRecipe,
    done: list[tuple[Book, Path, ItemStats]],
    counter: TokenCounter,
    engine: Engine | None,
    run_dir: Path,
    stats: RunStats,
    *,
    force: bool,
    progress: bool,
) -> list[Book]:
    from ..llm.factory import LazyEngine
    from .llm_run import STAGES, run_llm_stages

    if force:
        for f in (run_dir / "llm").glob("*.jsonl"):
            f.unlink()
    own = engine is None
    engine = engine or LazyEngine(recipe.llm)  # type: ignore[arg-type]
    try:
        out = run_llm_stages([(b, d) for b, d, _ in done], recipe, engine, counter, run_dir, progress=progress)
    finally:
        endpoints = getattr(engine, "endpoint_stats", None)
        if callable(endpoints) and endpoints():  # a pool of servers: what each endpoint answered
            stats.details["endpoints"] = endpoints()
            stats.notes += [
                f"endpoint {e['url']}: {e['requests']} requests, {e['failures']} failures ({e['state']})"
                for e in stats.details["endpoints"]
            ]
        if own:
            engine.close()
    # One count of flags, from the books' flag lists: the book lines, the stage lines, stats.json and
    # llm_flags.json all say the same.
    for name in STAGES:
        st = out.stats[name]
        flags = [f for fl in out.flags.values() for f in fl if f["stage"] == name]
        st.flagged = len(flags)
        stats.stages[name] = st
    for (_, _, item), book in zip(done, out.books):
        item.counts = book_counts(book)
        flags = out.flags.get(book.meta.book_id, [])
        item.flagged = len(flags)
        item.flags = {}
        for flag in flags:
            item.flags[flag["stage"]] = item.flags.get(flag["stage"], 0) + 1
        item.stages_run.extend(name for name in STAGES if out.stats[name].calls or out.stats[name].reused)
    return out.books

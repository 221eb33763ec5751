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

Every file is written atomically and a stage is recorded in the manifest only after its file is in
place, so a killed run leaves no file that looks finished; a re-run skips stages whose fingerprint
(source file, recipe section, novelcraft version) is unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NovelcraftError
from ..io import atomic_write_json, atomic_write_text, sha256_file
from ..models import Book
from ..recipes import write_resolved_recipe
from ..runs import ItemStats, Manifest, RunStats, files_with_suffix, fingerprint, resolve_inputs
from ..tokens import TokenCounter, load_token_counter
from .book import build_book, clean_raw_book
from .clean import CleanBook, render_clean_markdown, render_report
from .ingest import SUPPORTED_SUFFIXES, RawBook, SourceMeta, ingest_book, render_document
from .recipe import PrepRecipe
from .structure.document import Document

if TYPE_CHECKING:
    from ..llm.types import Engine

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PrepResult:
    """What ``run_prep`` produced: the stats record (also in ``stats.json``) and the finished books."""

    stats: RunStats
    books: list[Book]

    @property
    def failed(self) -> list[ItemStats]:
        """The books that failed (status ``failed``), with their errors."""
        return self.stats.failed

    def summary(self) -> str:
        """The printed summary of the run (:meth:`~novelcraft.runs.RunStats.summary`)."""
        return self.stats.summary()


def resolve_book_paths(patterns: Sequence[str], base: Path | None = None) -> list[Path]:
    """Files, folders (their supported books, sorted) and glob patterns -> unique book paths in order."""
    return resolve_inputs(patterns, files_with_suffix(SUPPORTED_SUFFIXES), what="books (.epub, .txt, .md)", base=base)


def book_counts(book: Book) -> dict[str, int]:
    """The counts a prep run reports per book."""
    return {
        "chapters": book.meta.total_chapters,
        "reference": len(book.reference),
        "blocks": sum(len(c.blocks) for c in book.chapters) + sum(len(r.blocks) for r in book.reference),
        "scenes": book.meta.total_scenes,
        "max_scene_tokens": max((s.tokens or 0 for s in book.scenes), default=0),
        "words": book.meta.word_count,
        "tokens": sum(c.tokens for c in book.chapters),
    }


def prep_one(
    source: Path, recipe: PrepRecipe, counter: TokenCounter, book_dir: Path, *, force: bool = False
) -> tuple[Book, ItemStats]:
    """Run ingest -> clean -> book for one source file, resuming finished stages (``book_dir/manifest.json``)."""
    stats = ItemStats(id=source.stem, source=str(source))
    manifest = Manifest(book_dir / "manifest.json")
    source_sha = sha256_file(source)

    def stage(
        name: str,
        fp: str,
        files: list[Path],
        run: Callable[[], Any],
        save: Callable[[Any], object],
        load: Callable[[], Any],
    ) -> Any:
        if not force and manifest.done(name, fp):
            stats.stages_skipped.append(name)
            return load()
        t0 = time.perf_counter()
        value = run()
        save(value)
        stats.seconds[name] = round(time.perf_counter() - t0, 4)
        manifest.record(name, fp, files, stats.seconds[name])
        stats.stages_run.append(name)
        return value

    f_meta, f_ingest, f_ingest_md = (book_dir / n for n in ("01_ingest.meta.json", "01_ingest.json", "01_ingest.md"))
    override = recipe.clean.override_for(str(source))
    encoding = override.encoding if override else None
    fp_ingest = fingerprint("ingest", source_sha, encoding)

    def save_ingest(raw: RawBook) -> None:
        atomic_write_text(f_ingest_md, render_document(raw.document))
        atomic_write_json(f_ingest, raw.document)
        atomic_write_json(f_meta, raw.meta)

    def load_ingest() -> RawBook:
        meta = SourceMeta.model_validate_json(f_meta.read_text(encoding="utf-8"))
        return RawBook(document=Document.model_validate_json(f_ingest.read_text(encoding="utf-8")), meta=meta)

    raw: RawBook = stage(
        "ingest",
        fp_ingest,
        [f_meta, f_ingest, f_ingest_md],
        lambda: ingest_book(source, encoding=encoding),
        save_ingest,
        load_ingest,
    )

    f_clean, f_clean_md, f_report = (book_dir / n for n in ("02_clean.json", "02_clean.md", "02_structure.md"))
    fp_clean = fingerprint("clean", fp_ingest, recipe.clean.model_dump())

    def save_clean(clean: CleanBook) -> None:
        atomic_write_text(f_clean_md, render_clean_markdown(clean))
        atomic_write_text(f_report, render_report(clean, raw.meta.source_file))
        atomic_write_json(f_clean, clean)

    clean: CleanBook = stage(
        "clean",
        fp_clean,
        [f_clean, f_clean_md, f_report],
        lambda: clean_raw_book(raw, recipe),
        save_clean,
        lambda: CleanBook.model_validate_json(f_clean.read_text(encoding="utf-8")),
    )
    if clean.encoding:
        stats.info["encoding"] = clean.encoding
    warnings = [r.reason for r in clean.report if r.role == "warning"]
    if warnings:
        stats.info["warnings"] = "; ".join(warnings)

    f_book = book_dir / "03_book.json"
    fp_book = fingerprint(
        "book",
        fp_clean,
        counter.name,
        recipe.budgets.model_dump(),
        recipe.segmentation.model_dump(),
        recipe.max_chapters,
    )
    book: Book = stage(
        "book",
        fp_book,
        [f_book],
        lambda: build_book(raw, clean, counter, recipe),
        lambda b: atomic_write_json(f_book, b),
        lambda: Book.model_validate_json(f_book.read_text(encoding="utf-8")),
    )
    stats.id = book.meta.book_id
    stats.counts = book_counts(book)
    return book, stats


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
    from tqdm.auto import tqdm

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
    done: list[tuple[Book, Path, ItemStats]] = []
    stems: dict[str, int] = {}
    for source in tqdm(sources, desc="prep", unit="book", disable=not progress):
        stem = source.stem
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f"{stem}-{stems[stem]}"
        try:
            book, item = prep_one(source, recipe, counter, run_dir / "books" / stem, force=force)
            done.append((book, run_dir / "books" / stem, item))
        except NovelcraftError as exc:
            log.warning("skipped: %s", exc)  # reported again, as an error, with the run's summary
            item = ItemStats(id=source.stem, source=str(source), status="failed", error=str(exc))
        stats.items.append(item)
    books = [b for b, _, _ in done]
    try:
        if recipe.llm is not None and done:
            books = _run_llm(recipe, done, counter, engine, run_dir, stats, force=force, progress=progress)
    finally:
        stats.seconds = round(time.perf_counter() - t0, 3)
        stats.write(run_dir)
    return PrepResult(stats=stats, books=books)


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

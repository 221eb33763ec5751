"""Stages 1-3 of one book: ingest -> clean -> book, each skipped when its fingerprint is unchanged.

The stages' files go to the book's folder (``books/<stem>/``, see :mod:`novelcraft.prep.run`) and each stage
is recorded in its ``manifest.json`` after its files are in place, so a killed run leaves nothing that looks
finished and a re-run redoes only the stages whose inputs (source file, recipe section, tokenizer,
novelcraft version) changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..io import atomic_write_json, atomic_write_text, sha256_file
from ..models import Book
from ..runs import Manifest, fingerprint
from ..stats import ItemStats
from ..tokens import TokenCounter
from .book import build_book, clean_raw_book
from .clean import CleanBook, render_clean_markdown, render_report
from .ingest import RawBook, SourceMeta, ingest_book, render_document
from .recipe import PrepRecipe
from .structure.document import Document


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


def stage_fingerprints(source_sha: str, recipe: PrepRecipe, counter_name: str, encoding: str | None) -> list[str]:
    """Fingerprints of stages 1-3 of one book (ingest, clean, book): each hashes the one before it and the
    recipe sections and tokenizer the stage reads, so a changed setting redoes that stage and the ones after."""
    fp_ingest = fingerprint("ingest", source_sha, encoding)
    fp_clean = fingerprint("clean", fp_ingest, recipe.clean.model_dump())
    fp_book = fingerprint(
        "book",
        fp_clean,
        counter_name,
        recipe.budgets.model_dump(),
        recipe.segmentation.model_dump(),
        recipe.max_chapters,
    )
    return [fp_ingest, fp_clean, fp_book]


def prep_one(
    source: Path,
    recipe: PrepRecipe,
    counter: TokenCounter,
    book_dir: Path,
    *,
    force: bool = False,
    on_stage: Callable[[str], object] | None = None,
    source_sha: str | None = None,
) -> tuple[Book, ItemStats]:
    """Run ingest -> clean -> book for one source file, resuming finished stages (``book_dir/manifest.json``);
    ``on_stage(name)`` hears each stage as it ends (run or skipped); ``source_sha``: the file's SHA-256 when
    the caller hashed it already."""
    stats = ItemStats(id=source.stem, source=str(source))
    manifest = Manifest(book_dir / "manifest.json")
    source_sha = source_sha or sha256_file(source)
    override = recipe.clean.override_for(str(source))
    encoding = override.encoding if override else None
    fp_ingest, fp_clean, fp_book = stage_fingerprints(source_sha, recipe, counter.name, encoding)

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
            value = load()
        else:
            t0 = time.perf_counter()
            value = run()
            save(value)
            stats.seconds[name] = round(time.perf_counter() - t0, 4)
            manifest.record(name, fp, files, stats.seconds[name])
            stats.stages_run.append(name)
        if on_stage is not None:
            on_stage(name)
        return value

    f_meta, f_ingest, f_ingest_md = (book_dir / n for n in ("01_ingest.meta.json", "01_ingest.json", "01_ingest.md"))

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

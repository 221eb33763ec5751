"""``novelcraft prep``: run the data-prep stages over many books, resumably, under one run directory.

Layout of a run (``OUTPUT_DIR/NAME``)::

    recipe.resolved.yaml          the recipe with every default filled in
    stats.json                    per-book and total statistics of the last run
    books/<stem>/01_ingest.md     pandoc / plain-text Markdown       (+ 01_ingest.meta.json)
    books/<stem>/02_clean.json    chapters and reference sections    (+ 02_clean.md for reading)
    books/<stem>/03_book.json     the Book JSON (blocks and scenes)
    books/<stem>/manifest.json    fingerprint of each finished stage

Every file is written atomically and a stage is recorded in the manifest only after its file is in
place, so a killed run leaves no file that looks finished; a re-run skips stages whose fingerprint
(source file, recipe section, novelcraft version) is unchanged.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel

from . import __version__
from .book import build_book, clean_raw_book, render_clean_markdown
from .clean import CleanBook, Section
from .errors import NovelcraftError
from .ingest import SUPPORTED_SUFFIXES, RawBook, SourceMeta, ingest_book
from .io import atomic_write_json, atomic_write_text, sha256_file, sha256_text
from .models import Book
from .recipes import PrepRecipe, write_resolved_recipe
from .tokens import TokenCounter, load_token_counter

if TYPE_CHECKING:
    from .llm.engine import Engine

log = logging.getLogger(__name__)


class BookStats(BaseModel):
    source: str
    book_id: str | None = None
    status: str = "ok"
    error: str | None = None
    chapters: int = 0
    reference_sections: int = 0
    blocks: int = 0
    scenes: int = 0
    words: int = 0
    tokens: int = 0
    max_scene_tokens: int = 0
    flagged: int = 0
    stages_run: list[str] = []
    stages_skipped: list[str] = []
    seconds: dict[str, float] = {}


class PrepResult(BaseModel):
    run_dir: str
    books: list[BookStats]
    tokenizer: str
    novelcraft_version: str
    seconds: float
    engine: str | None = None
    llm: dict[str, dict[str, Any]] = {}

    @property
    def failed(self) -> list[BookStats]:
        return [b for b in self.books if b.status != "ok"]

    def summary(self) -> str:
        ok = [b for b in self.books if b.status == "ok"]
        lines = [
            f"run {self.run_dir}: {len(ok)}/{len(self.books)} books ok in {self.seconds:.1f}s (tokenizer {self.tokenizer})"
        ]
        for b in self.books:
            if b.status == "ok":
                lines.append(
                    f"  {b.book_id}: {b.chapters} chapters, {b.reference_sections} reference, {b.blocks} blocks, "
                    f"{b.scenes} scenes (max {b.max_scene_tokens} tokens), {b.words} words, {b.tokens} tokens"
                    + (f", {b.flagged} flagged LLM items" if b.flagged else "")
                    + (f"; skipped {', '.join(b.stages_skipped)}" if b.stages_skipped else "")
                )
            else:
                lines.append(f"  FAILED {b.error}")
        for stage, st in self.llm.items():
            if st.get("calls") or st.get("reused"):
                lines.append(
                    f"  llm {stage}: {st['calls']} calls ({st['reused']} reused), {st['retries']} retries, "
                    f"{st['compressions']} compressions, {st['flagged']} flagged, {st['prompt_tokens']} prompt + "
                    f"{st['completion_tokens']} completion tokens, {st['wall_seconds']}s"
                )
        return "\n".join(lines)


def resolve_book_paths(patterns: list[str], base: Path | None = None) -> list[Path]:
    """Files, folders (their supported books, sorted) and glob patterns -> unique book paths in order."""
    base = base or Path.cwd()
    out: list[Path] = []
    for pattern in patterns:
        p = Path(pattern).expanduser()
        p = p if p.is_absolute() else base / p
        if any(ch in pattern for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(str(p), recursive=True))]
        elif p.is_dir():
            matches = sorted(x for x in p.iterdir() if x.suffix.lower() in SUPPORTED_SUFFIXES)
        else:
            matches = [p]
        if not matches:
            raise NovelcraftError(f"no books match '{pattern}'", step="inputs")
        for m in matches:
            if m not in out:
                out.append(m)
    return out


def _fingerprint(*parts: Any) -> str:
    return sha256_text(json.dumps(parts, sort_keys=True, default=str))


class _Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def done(self, stage: str, fingerprint: str, file: Path) -> bool:
        entry = self.data.get(stage)
        return bool(entry and entry.get("fingerprint") == fingerprint and file.is_file())

    def record(self, stage: str, fingerprint: str, file: Path, seconds: float) -> None:
        self.data[stage] = {"fingerprint": fingerprint, "file": file.name, "seconds": round(seconds, 4)}
        atomic_write_json(self.path, self.data)


def _clean_to_json(clean: CleanBook) -> dict[str, Any]:
    return dataclasses.asdict(clean)


def _clean_from_json(data: dict[str, Any]) -> CleanBook:
    return CleanBook(
        chapters=[Section(**s) for s in data["chapters"]],
        reference=[Section(**s) for s in data["reference"]],
        footnotes=[tuple(x) for x in data.get("footnotes", [])],
        display_title=data.get("display_title"),
    )


def prep_one(
    source: Path, recipe: PrepRecipe, counter: TokenCounter, book_dir: Path, *, force: bool = False
) -> tuple[Book, BookStats]:
    """Run ingest -> clean -> book for one source file, resuming finished stages."""
    stats = BookStats(source=str(source))
    manifest = _Manifest(book_dir / "manifest.json")
    source_sha = sha256_file(source)
    timings: dict[str, float] = {}

    def stage(name: str, fingerprint: str, file: Path, run: Callable[[], Any], save: Callable[[Any], None], load: Callable[[], Any]) -> Any:
        if not force and manifest.done(name, fingerprint, file):
            stats.stages_skipped.append(name)
            return load()
        t0 = time.perf_counter()
        value = run()
        save(value)
        timings[name] = time.perf_counter() - t0
        manifest.record(name, fingerprint, file, timings[name])
        stats.stages_run.append(name)
        return value

    f_ingest = book_dir / "01_ingest.md"
    fp_ingest = _fingerprint("ingest", __version__, source_sha)

    def save_ingest(raw: RawBook) -> None:
        atomic_write_json(book_dir / "01_ingest.meta.json", raw.meta)
        atomic_write_text(f_ingest, raw.markdown)

    def load_ingest() -> RawBook:
        meta = SourceMeta.model_validate_json((book_dir / "01_ingest.meta.json").read_text(encoding="utf-8"))
        return RawBook(markdown=f_ingest.read_text(encoding="utf-8"), meta=meta)

    raw: RawBook = stage("ingest", fp_ingest, f_ingest, lambda: ingest_book(source), save_ingest, load_ingest)

    f_clean = book_dir / "02_clean.json"
    fp_clean = _fingerprint("clean", fp_ingest, recipe.clean.model_dump())

    def save_clean(clean: CleanBook) -> None:
        atomic_write_text(book_dir / "02_clean.md", render_clean_markdown(clean))
        atomic_write_json(f_clean, _clean_to_json(clean))

    clean: CleanBook = stage(
        "clean",
        fp_clean,
        f_clean,
        lambda: clean_raw_book(raw, recipe),
        save_clean,
        lambda: _clean_from_json(json.loads(f_clean.read_text(encoding="utf-8"))),
    )

    f_book = book_dir / "03_book.json"
    fp_book = _fingerprint(
        "book", fp_clean, counter.name, recipe.budgets.model_dump(), recipe.segmentation.model_dump(), recipe.max_chapters
    )
    book: Book = stage(
        "book",
        fp_book,
        f_book,
        lambda: build_book(raw, clean, counter, recipe),
        lambda b: atomic_write_json(f_book, b),
        lambda: Book.model_validate_json(f_book.read_text(encoding="utf-8")),
    )
    stats.book_id = book.meta.book_id
    stats.chapters = book.meta.total_chapters
    stats.reference_sections = len(book.reference)
    stats.blocks = sum(len(c.blocks) for c in book.chapters) + sum(len(r.blocks) for r in book.reference)
    stats.scenes = book.meta.total_scenes
    stats.words = book.meta.word_count
    stats.tokens = sum(c.tokens for c in book.chapters)
    stats.max_scene_tokens = max((s.tokens or 0 for s in book.scenes), default=0)
    stats.seconds = {k: round(v, 4) for k, v in timings.items()}
    return book, stats


def run_prep(
    recipe: PrepRecipe,
    *,
    counter: TokenCounter | None = None,
    engine: "Engine | None" = None,
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
    counter = counter or load_token_counter(recipe.tokenizer)
    run_dir = recipe.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    write_resolved_recipe(recipe, run_dir)
    results: list[BookStats] = []
    done: list[tuple[Book, Path, BookStats]] = []
    stems: dict[str, int] = {}
    for source in tqdm(sources, desc="prep", unit="book", disable=not progress):
        stem = source.stem
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f"{stem}-{stems[stem]}"
        try:
            book, stats = prep_one(source, recipe, counter, run_dir / "books" / stem, force=force)
            done.append((book, run_dir / "books" / stem, stats))
        except NovelcraftError as exc:
            log.error("%s", exc)
            stats = BookStats(source=str(source), status="failed", error=str(exc))
        results.append(stats)
    result = PrepResult(
        run_dir=str(run_dir),
        books=results,
        tokenizer=counter.name,
        novelcraft_version=__version__,
        seconds=0.0,
        engine=recipe.llm.identity() if recipe.llm else None,
    )
    try:
        if recipe.llm is not None and done:
            _run_llm(recipe, done, counter, engine, run_dir, result, force=force, progress=progress)
    finally:
        result.seconds = round(time.perf_counter() - t0, 3)
        atomic_write_json(run_dir / "stats.json", result)
    return result


def _run_llm(
    recipe: PrepRecipe,
    done: list[tuple[Book, Path, BookStats]],
    counter: TokenCounter,
    engine: "Engine | None",
    run_dir: Path,
    result: PrepResult,
    *,
    force: bool,
    progress: bool,
) -> None:
    from .llm.engine import LazyEngine
    from .llmprep import run_llm_stages

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
    result.llm = out.stats
    for (_, _, stats), book in zip(done, out.books):
        stats.scenes = book.meta.total_scenes
        stats.max_scene_tokens = max((s.tokens or 0 for s in book.scenes), default=0)
        stats.flagged = len(out.flags.get(book.meta.book_id, []))
        stats.stages_run.extend(name for name, st in out.stats.items() if st["calls"] or st["reused"])

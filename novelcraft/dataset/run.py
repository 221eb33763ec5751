"""``run_compile``: a compile recipe over a run directory (skip when unchanged, atomic files, stats)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..bookfiles import load_book, resolve_book_files
from ..chat_format import load_chat_template
from ..errors import NovelcraftError
from ..executors.base import make_executor
from ..io import sha256_file
from ..recipes import dump_recipe, write_resolved_recipe
from ..runs import Manifest, fingerprint
from ..stats import ItemStats, RunStats
from .files import expected_files, load_compiled, write_compiled
from .parallel import count_books
from .recipe import CompileRecipe
from .records import compile_books
from .stats import CompileResult

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

log = logging.getLogger(__name__)

#: the manifest entry of a compiled data set.
ENTRY = "dataset"


def run_stats(result: CompileResult, recipe: CompileRecipe) -> RunStats:
    """The stats record of a compile run (the data card's numbers under ``details.dataset``)."""
    s = result.stats
    items = [
        ItemStats(
            id=b.book_id, source=b.source, counts={"train": b.train, "validation": b.validation, "dropped": b.dropped}
        )
        for b in s.books
    ]
    return RunStats(
        command="compile",
        name=recipe.name,
        run_dir=str(recipe.run_dir),
        seconds=round(result.seconds, 3),
        tokenizer=s.tokenizer,
        items=items,
        notes=[line.strip() for line in result.summary().splitlines()],
        details={
            "inputs": [b.source for b in s.books],
            "dataset": s.model_dump(mode="json"),
            "files": result.files,
            "skipped": result.skipped,
        },
    )


def run_compile(
    recipe: CompileRecipe,
    counter: TokenCounter | None = None,
    *,
    force: bool = False,
    progress: bool = False,
) -> CompileResult:
    """Compile the recipe's books into ``recipe.output_dir/recipe.name`` (see :mod:`novelcraft.dataset`).

    Skips the work (and returns the stored data set) when inputs, recipe, tokenizer and novelcraft
    version are unchanged since the last run and its files are in place; ``force`` recompiles. Writes
    the data files, ``recipe.resolved.yaml``, ``manifest.json`` and ``stats.json``.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    paths = resolve_book_files(recipe.books, recipe.book_files)
    if counter is None:
        from ..tokens import load_token_counter

        counter = load_token_counter(recipe.tokenizer)
    system_prompt = recipe.system_prompt.resolve()
    template = load_chat_template(recipe.chat_template, recipe.tokenizer.name)
    run_dir = recipe.run_dir
    fp = fingerprint(
        dump_recipe(recipe, outputs_only=True),
        counter.name,
        system_prompt,
        template.jinja,
        [(str(p), sha256_file(p)) for p in paths],
    )
    manifest = Manifest(run_dir / "manifest.json")
    # the stored records are read back from the JSONL files, so only a JSONL export can be skipped
    if not force and "jsonl" in recipe.export.formats and manifest.done(ENTRY, fp):
        log.info("%s: inputs and recipe unchanged, skipped (--force recompiles)", run_dir)
        result = load_compiled(run_dir)
        result.seconds = time.perf_counter() - t0
        return result

    books = [load_book(p) for p in tqdm(paths, desc="load books", unit="book", disable=not progress)]
    book_counts = None
    executor_stats = None
    if not recipe.executor.inline:
        executor = make_executor(recipe.executor)
        try:
            book_counts = count_books(paths, recipe, counter, system_prompt, template, executor, progress=progress)
        finally:
            executor.close()
            executor_stats = executor.stats()
    result = compile_books(
        books,
        recipe,
        counter,
        sources=[str(p) for p in paths],
        system_prompt=system_prompt,
        chat_template=template,
        book_counts=book_counts,
    )
    if not result.train and not result.validation:
        raise NovelcraftError(
            f"no records: all {sum(len(b.scenes) for b in books)} scenes were dropped "
            f"({result.summary().splitlines()[-1].strip()})",
            path=paths[0] if len(paths) == 1 else None,
            step="compile",
        )
    result.run_dir = str(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest.forget(ENTRY)  # the old files are about to be replaced
    write_resolved_recipe(recipe, run_dir)
    write_compiled(result, recipe, run_dir)
    result.files = expected_files(recipe, result.stats)
    result.seconds = time.perf_counter() - t0
    stats = run_stats(result, recipe)
    stats.executor = executor_stats
    stats.write(run_dir)
    manifest.record(ENTRY, fp, [run_dir / f for f in result.files], result.seconds)
    return result

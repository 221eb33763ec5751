"""Compile on an executor: each book's records counted on a worker (the costly part), merged in book order.

A unit is one Book JSON file: the worker reads it and counts what :func:`~novelcraft.dataset.records.compile_books`
counts of it (world context, and per record its ChatML, scene, summary section and instruction), exactly as
the in-process run does in its one batch; the driver then builds the records, splits and writes them, so the
data set is the same bytes whichever executor counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..bookfiles import load_book
from ..chat_format import ChatTemplate
from ..errors import NovelcraftError
from ..executors.base import Executor, Unit, UnitContext
from ..tokens import TokenCounter
from .recipe import CompileRecipe
from .records import count_book


def count_unit(ctx: UnitContext, shared: tuple[CompileRecipe, TokenCounter, str, ChatTemplate], path: str) -> list[int]:
    """One book's counts (its ``book_counts`` entry)."""
    recipe, counter, system_prompt, template = shared
    return count_book(load_book(path), recipe, counter, system_prompt, template)


def count_books(
    paths: Sequence[Path],
    recipe: CompileRecipe,
    counter: TokenCounter,
    system_prompt: str,
    template: ChatTemplate,
    executor: Executor,
    *,
    progress: bool = False,
) -> list[list[int]]:
    """Every book's counts on ``executor``, in ``paths`` order."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(paths), desc="count records", unit="book", disable=not progress)
    try:
        results = executor.map(
            count_unit,
            (recipe, counter, system_prompt, template),
            [Unit(str(p), str(p)) for p in paths],
            on_result=lambda r: bar.update(1),
        )
    finally:
        bar.close()
    lost = [r for r in results if not r.ok]
    if lost:
        raise NovelcraftError(lost[0].error or "a unit was lost", path=lost[0].key, step="compile")
    return [list(r.value) for r in results]

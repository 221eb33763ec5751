"""``novelcraft prep`` and ``novelcraft inspect``: thin wrappers over :func:`novelcraft.prep.run_prep`."""

from __future__ import annotations

import argparse

from ..commands import Command, recipe_arguments, report


def prep(args: argparse.Namespace) -> int:
    """``novelcraft prep RECIPE``: load the recipe, prepare its books, print the run's stats summary."""
    from ..recipes import load_recipe
    from .run import run_prep

    recipe = load_recipe(args.recipe, args.overrides, kind="prep")
    return report(run_prep(recipe, force=args.force, progress=not args.no_progress).stats)


def inspect(args: argparse.Namespace) -> int:
    """``novelcraft inspect BOOK...``: print (and with ``--out`` write) each book's structure report."""
    import sys
    from pathlib import Path

    from ..errors import NovelcraftError
    from ..io import atomic_write_text
    from ..recipes import load_recipe
    from .inspect import inspect_book

    recipe = load_recipe(args.recipe, args.overrides, kind="prep") if args.recipe else None
    status = 0
    for book in args.books:
        try:
            result = inspect_book(book, recipe)
        except NovelcraftError as exc:
            print(f"novelcraft: error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(result.report)
        if args.out:
            out = Path(args.out) / f"{Path(book).stem}.structure.md"
            atomic_write_text(out, result.report)
            print(f"wrote {out}", file=sys.stderr)
    return status


def _inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("books", nargs="+", help="books to inspect (.epub, .txt, .md)")
    p.add_argument("--recipe", help="a prep recipe whose clean settings (clean.books...) apply")
    p.add_argument("--out", help="also write each report to OUT/<stem>.structure.md")
    p.add_argument("overrides", nargs="*", default=[], help=argparse.SUPPRESS)


COMMANDS = [
    Command(
        "prep",
        "run the data-prep stages of a prep recipe (books -> Book JSON -> LLM stages)",
        lambda p: recipe_arguments(p, "prep", "budgets.scene.hard_max=2800"),
        "novelcraft.prep.cli:prep",
    ),
    Command(
        "inspect",
        "print the structure a book gets (outline, reference and dropped blocks, warnings) without a prep run",
        _inspect_arguments,
        "novelcraft.prep.cli:inspect",
    ),
]

"""``novelcraft prep`` and ``novelcraft inspect``: thin wrappers over :func:`novelcraft.prep.run_prep`."""

from __future__ import annotations

import argparse

from ..commands import Command, recipe_arguments, report


def prep(args: argparse.Namespace) -> int:
    """``novelcraft prep``: load the recipe, prepare its books, print the stats summary."""
    from ..recipes import load_recipe
    from .run import run_prep

    recipe = load_recipe(args.recipe, args.overrides, kind="prep")
    return report(run_prep(recipe, force=args.force, progress=not args.no_progress).stats)


COMMANDS = [
    Command(
        "prep",
        "run the data-prep stages of a prep recipe (books -> Book JSON -> LLM stages)",
        lambda p: recipe_arguments(p, "prep", "budgets.scene.hard_max=2800"),
        "novelcraft.prep.cli:prep",
    ),
]

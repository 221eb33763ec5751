"""``novelcraft compile``: a thin wrapper over :func:`novelcraft.dataset.run_compile`."""

from __future__ import annotations

import argparse

from ..commands import Command, recipe_arguments, report


def compile_command(args: argparse.Namespace) -> int:
    """``novelcraft compile``: load the recipe, compile, print the stats summary."""
    from ..recipes import load_recipe
    from .run import run_compile, run_stats

    recipe = load_recipe(args.recipe, args.overrides, kind="compile")
    result = run_compile(recipe, force=args.force, progress=not args.no_progress)
    return report(run_stats(result, recipe))


COMMANDS = [
    Command(
        "compile",
        "compile Book JSON files into a ChatML training set (JSONL, HF dataset, data card)",
        lambda p: recipe_arguments(p, "compile", "split.seed=7"),
        "novelcraft.dataset.cli:compile_command",
    ),
]

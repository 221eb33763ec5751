"""Subcommand ``generate``: a thin wrapper over :func:`novelcraft.generate.generate_novels`."""

from __future__ import annotations

import argparse

from ..commands import Command, recipe_arguments, report
from ..errors import NovelcraftError


def generate(args: argparse.Namespace) -> int:
    """``novelcraft generate``: load the recipe, check the resume and branch flags, generate, print stats."""
    from ..recipes import load_recipe
    from .run import generate_novels

    recipe = load_recipe(args.recipe, args.overrides, kind="generate")
    branch = None
    if args.branch_from is not None:
        if not args.source:
            raise NovelcraftError("--branch-from needs --source RUN_DIR (the run to branch from)", step="branch")
        branch = (args.source, args.branch_from)
    result = generate_novels(
        None, recipe, resume=args.resume, outline=args.outline, branch_from=branch, progress=not args.no_progress
    )
    return report(result.stats)


def _arguments(p: argparse.ArgumentParser) -> None:
    """``novelcraft generate RECIPE [overrides] [--resume] [--outline FILE] [--branch-from K --source RUN]``."""
    recipe_arguments(p, "generate", "samples_per_seed=4 llm.sampling.temperature=0.8", force=False)
    p.add_argument(
        "--resume", action="store_true", help="continue the checkpoints of an interrupted run (same settings)"
    )
    p.add_argument(
        "--outline", help="outline file (outline.json/.yaml, e.g. edited by hand) used instead of generating one"
    )
    p.add_argument(
        "--branch-from", type=int, metavar="K", help="copy the novels of --source up to scene K and continue them here"
    )
    p.add_argument("--source", metavar="RUN_DIR", help="the run to branch from (with --branch-from)")


COMMANDS = [
    Command(
        "generate",
        "generate novels from story seeds (outline, scenes, summaries)",
        _arguments,
        "novelcraft.generate.cli:generate",
    ),
]

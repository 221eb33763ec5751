"""The command registry of ``novelcraft``: every subcommand is a :class:`Command` declared by its stage.

A command declares its arguments and names its handler as ``"module:function"``, imported only when the
command runs, so ``novelcraft --help`` loads no stage. Handlers are thin: they load the recipe, call the
stage's public function and print its :class:`~novelcraft.stats.RunStats` with :func:`report`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .stats import RunStats


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: its name, help, argument declaration and handler (``"module:function"``)."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: str  # "module:function", the function takes the parsed arguments and returns the exit status
    description: str | None = None

    def run(self, args: argparse.Namespace) -> int:
        """Import the handler and call it with the parsed arguments; returns the exit status."""
        module, _, name = self.handler.partition(":")
        return int(getattr(importlib.import_module(module), name)(args))


def recipe_arguments(p: argparse.ArgumentParser, kind: str, example: str, *, force: bool = True) -> None:
    """The arguments every recipe-driven command takes: RECIPE, overrides, --no-progress (and --force)."""
    p.add_argument("recipe", help=f"YAML recipe (kind: {kind})")
    p.add_argument("overrides", nargs="*", help=f"key.sub=value overrides, e.g. {example}")
    if force:
        p.add_argument("--force", action="store_true", help="redo finished work instead of skipping it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def report(stats: RunStats) -> int:
    """Print a run's stats summary; exit status 1 when an item failed."""
    import sys

    print(stats.summary())
    for item in stats.failed:
        # the same one-line form as every other error, on stderr, after the summary
        print(f"novelcraft: error: {item.error}", file=sys.stderr)
    return 1 if stats.failed else 0

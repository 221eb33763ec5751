"""``novelcraft`` command line: one registry of thin commands over the public functions of the package.

Each stage declares its commands (:class:`~novelcraft.commands.Command`) in its ``cli`` module; this module
collects them in :data:`REGISTRY`, in pipeline order, and turns errors into one line
``novelcraft: error: FILE: STEP: CAUSE`` with exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .commands import Command
from .errors import NovelcraftError

log = logging.getLogger("novelcraft")


def registry() -> list[Command]:
    """Every subcommand, in pipeline order: prep -> dataset (and continuation) -> train -> generate -> bench, then
    tools."""
    from .bench.cli import COMMANDS as BENCH
    from .continuation.cli import COMMANDS as CONTINUATION
    from .dataset.cli import COMMANDS as DATASET
    from .generate.cli import COMMANDS as GENERATE
    from .prep.cli import COMMANDS as PREP
    from .train.cli import COMMANDS as TRAIN
    from .validate.cli import COMMANDS as VALIDATE

    return [*PREP, *DATASET, *CONTINUATION, *TRAIN, *GENERATE, *BENCH, *VALIDATE]


def build_parser() -> argparse.ArgumentParser:
    """The ``novelcraft`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="novelcraft", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"novelcraft {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in registry():
        p = sub.add_parser(command.name, help=command.help, description=command.description or command.help)
        command.arguments(p)
        # whether KEY=VALUE words after a flag belong to a positional ``overrides`` (see main)
        positional = any(a.dest == "overrides" and not a.option_strings for a in p._actions)
        p.set_defaults(command_obj=command, trailing_overrides=positional)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv``); returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse takes the KEY=VALUE overrides only before the first flag; a user writes them anywhere
    # (``prep R --force a.b=c``), so the ones after a flag are added, in their order
    stray = [x for x in extra if x.startswith("-") or "=" not in x]
    if stray or (extra and not getattr(args, "trailing_overrides", False)):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.command_obj.run(args)
    except NovelcraftError as exc:
        print(f"novelcraft: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("novelcraft: interrupted; finished stages are kept and a re-run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``novelcraft`` command line: thin wrappers over the public functions of the package."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import NovelcraftError

log = logging.getLogger("novelcraft")


def _cmd_prep(args: argparse.Namespace) -> int:
    from .pipeline import run_prep
    from .recipes import PrepRecipe, load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if not isinstance(recipe, PrepRecipe):
        raise NovelcraftError(f"expected a recipe of kind 'prep', got '{recipe.kind}'", path=args.recipe)
    result = run_prep(recipe, force=args.force, progress=not args.no_progress)
    print(result.summary())
    return 1 if result.failed else 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .recipes import Budgets, TokenizerConfig, load_recipe
    from .tokens import load_token_counter
    from .validate import summarize, validate_paths

    counter = None
    budgets = None
    if args.recipe:
        recipe = load_recipe(args.recipe, args.overrides)
        if hasattr(recipe, "budgets") and hasattr(recipe, "tokenizer"):  # prep, compile
            budgets = recipe.budgets
            counter = load_token_counter(recipe.tokenizer)
    if args.tokenizer:
        counter = load_token_counter(TokenizerConfig(name=args.tokenizer))
    if counter is not None and budgets is None:
        budgets = Budgets()
    issues = validate_paths([Path(p) for p in args.paths], counter=counter, budgets=budgets)
    for issue in issues:
        print(issue.format())
    print(summarize(issues))
    return 1 if any(i.severity == "error" for i in issues) else 0


def _cmd_schemas(args: argparse.Namespace) -> int:
    from .schemas import check_schemas, write_schemas

    if args.check:
        stale = check_schemas(args.dir)
        if stale:
            print(f"schemas out of date in {args.dir}: {', '.join(stale)}; run: novelcraft schemas {args.dir}")
            return 1
        print(f"schemas in {args.dir} are up to date")
        return 0
    for path in write_schemas(args.dir):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="novelcraft", description=__doc__)
    parser.add_argument("--version", action="version", version=f"novelcraft {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prep", help="run the data-prep stages of a prep recipe")
    p.add_argument("recipe", help="YAML recipe (kind: prep)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. budgets.scene.hard_max=2800")
    p.add_argument("--force", action="store_true", help="re-run finished stages")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_prep)

    p = sub.add_parser("validate", help="validate stage files, Book JSON, training JSONL or recipes")
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument("--recipe", help="take the tokenizer and budgets from this recipe (enables budget checks)")
    p.add_argument("--tokenizer", help="tokenizer for budget checks (hub id or local path) with default budgets")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for --recipe (key=value)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("schemas", help="write (or --check) the JSON Schema files of the records")
    p.add_argument("dir", nargs="?", default="schemas")
    p.add_argument("--check", action="store_true", help="exit 1 when the files differ from the models")
    p.set_defaults(func=_cmd_schemas)

    # Stages that live in their own packages add their subcommands (thin wrappers over their public API).
    from .bench.cli import register as register_bench
    from .compile import register as register_compile
    from .generate.cli import register as register_generate
    from .train.cli import register as register_train

    register_compile(sub)
    register_train(sub)
    register_generate(sub)
    register_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except NovelcraftError as exc:
        print(f"novelcraft: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("novelcraft: interrupted; finished stages are kept and a re-run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

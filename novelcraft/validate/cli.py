"""``novelcraft validate`` and ``novelcraft schemas``: thin wrappers over :mod:`novelcraft.validate` and
:mod:`novelcraft.schemas`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..commands import Command


def validate(args: argparse.Namespace) -> int:
    """``novelcraft validate``: check the files and folders given, print each issue and a summary."""
    from ..chat_format import is_chat_template_name, load_chat_template
    from ..recipes import Budgets, TokenizerConfig, load_recipe
    from ..tokens import load_token_counter
    from .files import validate_paths
    from .issues import has_errors, summarize

    counter = budgets = template = None
    continuation_max = None
    if args.recipe:
        recipe = load_recipe(args.recipe, args.overrides)
        if hasattr(recipe, "budgets") and hasattr(recipe, "tokenizer"):  # prep, compile
            budgets = recipe.budgets
            counter = load_token_counter(recipe.tokenizer)
        chat_template = getattr(recipe, "chat_template", None)  # compile, train
        if recipe.kind == "continuation":  # its records section holds the budget and the template
            counter = load_token_counter(recipe.tokenizer)
            continuation_max = recipe.records.max_tokens
            chat_template = recipe.records.chat_template
        if is_chat_template_name(chat_template):
            # a train recipe has no tokenizer section: its model's tokenizer holds the template
            tokenizer = recipe.tokenizer.name if hasattr(recipe, "tokenizer") else getattr(recipe, "base_model", None)
            template = load_chat_template(chat_template, tokenizer)
    if args.tokenizer:
        counter = load_token_counter(TokenizerConfig(name=args.tokenizer))
    if counter is not None and budgets is None:
        budgets = Budgets()
    issues = validate_paths(
        [Path(p) for p in args.paths],
        counter=counter,
        budgets=budgets,
        chat_template=template,
        continuation_max_tokens=continuation_max,
    )
    for issue in issues:
        print(issue.format())
    print(summarize(issues))
    return 1 if has_errors(issues) else 0


def _validate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument("--recipe", help="take the tokenizer, chat template and budgets from this recipe (budget checks)")
    p.add_argument("--tokenizer", help="tokenizer for budget checks (hub id or local path) with default budgets")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for --recipe (key=value)")


def schemas(args: argparse.Namespace) -> int:
    """``novelcraft schemas``: write the JSON Schemas, or with ``--check`` report stale ones."""
    from ..schemas import check_schemas, write_schemas

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


def _schemas_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", default="schemas")
    p.add_argument("--check", action="store_true", help="exit 1 when the files differ from the models")


COMMANDS = [
    Command(
        "validate",
        "validate stage files, Book JSON, training JSONL, recipes and every file novelcraft writes",
        _validate_arguments,
        "novelcraft.validate.cli:validate",
    ),
    Command(
        "schemas",
        "write (or --check) the JSON Schema files of the records",
        _schemas_arguments,
        "novelcraft.validate.cli:schemas",
    ),
]

"""``novelcraft continuation`` (the data set) and ``novelcraft continue`` (the writer's assistant)."""

from __future__ import annotations

import argparse
import json
import sys

from ..commands import Command, recipe_arguments, report


def continuation_command(args: argparse.Namespace) -> int:
    """``novelcraft continuation RECIPE``: chunks, teacher reasoning, records; prints the stats summary."""
    from ..recipes import load_recipe
    from .run import run_continuation

    recipe = load_recipe(args.recipe, args.overrides, kind="continuation")
    result = run_continuation(recipe, force=args.force, progress=not args.no_progress)
    return report(result.stats)


def continue_command(args: argparse.Namespace) -> int:
    """``novelcraft continue RECIPE [-i FILE]``: continue a story; reasoning and continuation apart."""
    from ..recipes import load_recipe
    from .assistant import continue_story, read_story

    recipe = load_recipe(args.recipe, args.overrides, kind="assistant")
    text = read_story(args.input, book=args.book, chapter=args.chapter, sentence=args.sentence, stdin=sys.stdin)
    result = continue_story(
        text,
        recipe,
        guidance=args.guidance,
        sentences=args.sentences,
        words=args.words,
    )
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        if args.show_reasoning and result.reasoning:
            print(f"<reasoning>\n{result.reasoning}\n</reasoning>\n", file=sys.stderr)
        print(result.continuation)
    return 0


def _continue_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="YAML recipe (kind: assistant): the engine, format and length settings")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. llm.backend=openai")
    p.add_argument("-i", "--input", default="-", help="a text file with the story so far (default: - for stdin)")
    p.add_argument("--book", help="take the story from this Book JSON instead of TEXT")
    p.add_argument("--chapter", type=int, default=1, help="with --book: the chapter (1-based)")
    p.add_argument("--sentence", type=int, help="with --book: the story ends after this sentence of the chapter")
    p.add_argument("--guidance", help="one sentence saying where the story should go")
    p.add_argument("--sentences", type=int, help="target length in sentences (overrides the recipe)")
    p.add_argument("--words", type=int, help="target length in words (overrides the recipe)")
    p.add_argument("--json", action="store_true", help="print reasoning, continuation and details as JSON")
    p.add_argument("--show-reasoning", action="store_true", help="also print the reasoning (to stderr)")


COMMANDS = [
    Command(
        "continuation",
        "build a reasoning-continuation training set: chapter chunks, teacher reasoning, CRA or chat records",
        lambda p: recipe_arguments(p, "continuation", "select.max_records=200"),
        "novelcraft.continuation.cli:continuation_command",
    ),
    Command(
        "continue",
        "the writer's assistant: continue a story a few sentences at a time, reasoning first",
        _continue_arguments,
        "novelcraft.continuation.cli:continue_command",
    ),
]

"""``novelcraft bench`` subcommand (thin wrapper over :func:`novelcraft.bench.runner.run_bench`)."""

from __future__ import annotations

import argparse

from ..commands import Command, report
from ..errors import NovelcraftError


def bench(args: argparse.Namespace) -> int:
    """``novelcraft bench``: build the recipe from ``--recipe`` and the flags, run it, print the stats summary."""
    from ..recipes import load_recipe
    from ..stats import read_stats
    from .recipe import BenchRecipe
    from .runner import run_bench

    if args.continuation:
        from .continuation_run import run_continuation_bench

        stats, _ = run_continuation_bench(load_recipe(args.continuation, args.overrides, kind="bench_continuation"))
        return report(stats)
    if args.recipe:
        recipe = load_recipe(args.recipe, args.overrides, kind="bench")
    else:
        if args.overrides:
            raise NovelcraftError("--set needs --recipe or --continuation", step="bench")
        recipe = BenchRecipe()
    update: dict[str, object] = {}
    if args.novels:
        update["novels"] = list(args.novels)
    if args.references:
        update["references"] = list(args.references)
    if args.embedder:
        update["embedding"] = recipe.embedding.model_copy(update={"model": args.embedder})
    if args.human_baseline:
        update["baseline"] = recipe.baseline.model_copy(update={"source": "compute"})
    elif args.baseline_file:
        update["baseline"] = recipe.baseline.model_copy(update={"source": "file", "file": args.baseline_file})
    if args.speed:
        update["speed"] = recipe.speed.model_copy(update={"enabled": True})
    # re-validate so that the cross-field checks of the recipe still hold after the flags
    recipe = BenchRecipe.model_validate(
        {**recipe.model_dump(), **{k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in update.items()}}
    )
    if not recipe.novels and recipe.baseline.source != "compute" and not recipe.speed.enabled:
        raise NovelcraftError("nothing to do: give NOVEL files, --human-baseline or --speed", step="bench")
    _, paths = run_bench(recipe, out_dir=args.report)
    return report(read_stats(paths["stats"].parent))


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("novels", nargs="*", metavar="NOVEL", help="novels to score (files or folders)")
    p.add_argument("--recipe", help="YAML recipe of kind 'bench' (flags override it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for --recipe (key.sub=value)")
    p.add_argument(
        "--human-baseline",
        action="store_true",
        help="compute the human baseline from the sample books now (default: the packaged one)",
    )
    p.add_argument("--baseline-file", help="read the human baseline from this JSON instead")
    p.add_argument(
        "--references", nargs="+", metavar="BOOK", help="books for the regurgitation audit (e.g. the training books)"
    )
    p.add_argument(
        "--embedder",
        choices=["auto", "minilm", "tfidf", "none"],
        help="embedding model for goal adherence and coherence",
    )
    p.add_argument("--report", metavar="DIR", help="report folder (default: runs/<recipe name>)")
    p.add_argument("--speed", action="store_true", help="also run the speed benchmarks in benchmarks/ and report them")
    p.add_argument(
        "--continuation",
        metavar="RECIPE",
        help="instead: reasoning continuation of base vs fine-tuned models on held-out chunks "
        "(a recipe of kind bench_continuation)",
    )


COMMANDS = [
    Command(
        "bench",
        "score novels (generated or human) against the human baseline; report in Markdown/HTML/JSON",
        _arguments,
        "novelcraft.bench.cli:bench",
        description="Judge-free metrics of novels per scene and over the novel, next to the human range of "
        "the sample books; optional speed benchmarks. NOVEL: .md, Novel JSON, Book JSON or .epub.",
    ),
]

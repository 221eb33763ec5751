"""How good a model is at each LLM prep stage, judge-free, with any engine: the tool to choose a prep model.

    python benchmarks/stage_quality.py                                   # the embedded model, on CPU
    python benchmarks/stage_quality.py llm.backend=openai llm.model=Qwen/Qwen3-30B-A3B-Instruct-2507 \\
        llm.openai.base_url=http://127.0.0.1:8000/v1                     # any OpenAI-compatible server

On the first ``--chapters`` chapters of each ``--books`` book (:mod:`novelcraft.prep.quality`):

1. **Segmentation** against gold the books carry: their scene breaks, and the chapter boundary hidden by
   joining consecutive chapters — precision, recall and F1 of the model's scene starts (tolerance
   ``--tolerance`` blocks), next to the size-based fallback as the floor every model must beat.
2. **Summaries** (the real stage: gates, retries, budgets): name precision and recall against the scenes
   covered, share within the word budgets, drift over the chain.
3. **Instructions**: top-1 accuracy and margin of an instruction's similarity to its own scene against the
   book's other scenes (MiniLM embeddings when the wheel is installed, else TF-IDF).
4. **Gate pass rates** per stage: items accepted, flagged (kept after failing a gate or budget), failed
   (fallback), and retries per item.

The engine is a prep recipe's ``llm`` section (default ``recipes/prep/default.yaml``'s), changed by
``key=value`` overrides; every figure printed is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from novelcraft import __version__  # noqa: E402
from novelcraft.llm import make_engine  # noqa: E402
from novelcraft.llm.tasks import run_tasks  # noqa: E402
from novelcraft.models import RunningSummary  # noqa: E402
from novelcraft.prep.book import prep_book  # noqa: E402
from novelcraft.prep.llm_run import run_llm_stages  # noqa: E402
from novelcraft.prep.llm_tasks import Window, fallback_boundaries, segmentation_task  # noqa: E402
from novelcraft.prep.quality import (  # noqa: E402
    boundary_scores,
    gold_windows,
    instruction_adherence,
    summary_faithfulness,
)
from novelcraft.prompts import load_prompt  # noqa: E402
from novelcraft.recipes import load_recipe  # noqa: E402
from novelcraft.tokens import load_token_counter  # noqa: E402

DEFAULT_BOOKS = ["data/books/iron-heel.epub", "data/books/frankenstein.epub"]


def segmentation(engine: Any, books: list, recipe: Any, tolerance: int) -> dict[str, Any]:
    prompt = load_prompt("segmentation", recipe.stages.prompts_dir)
    jobs = []
    for book in books:
        for w in gold_windows(book.chapters, max_tokens=recipe.segmentation.window_tokens):
            window = Window(chapter_index=0, offset=0, blocks=w.blocks)
            task = segmentation_task(book, window, f"{book.meta.title}, {w.name}", prompt, recipe)
            task.key = f"{book.meta.book_id}/{w.name}"
            jobs.append((w, task))
    outcomes = run_tasks(engine, [t for _, t in jobs], attempts=recipe.stages.attempts)
    target = recipe.budgets.atomic.goldilocks_max
    model, floor, kinds = [], [], {}
    for (w, _), o in zip(jobs, outcomes):
        fallback = fallback_boundaries([b.tokens for b in w.blocks], target)
        predicted = list(o.value.scene_starts) if o.value is not None else fallback
        model.append((predicted, w.gold))
        floor.append((fallback, w.gold))
        kinds[w.kind] = kinds.get(w.kind, 0) + 1
    answered = sum(1 for o in outcomes if o.value is not None)
    return {
        "windows": len(jobs),
        "by_kind": kinds,
        "answered": answered,
        "model": boundary_scores(model, tolerance),
        "floor": boundary_scores(floor, tolerance),
    }


def summaries_and_instructions(engine: Any, books: list, recipe: Any, counter: Any, out: Path) -> dict[str, Any]:
    res = run_llm_stages([(b, out / b.meta.book_id) for b in books], recipe, engine, counter, out, progress=False)
    faith, adherence = [], []
    try:
        from novelcraft.bench.embed import load_embedder

        embedder = load_embedder("auto")
        embed_name = embedder.name
    except Exception as exc:  # the bench extra is missing: instruction adherence is left out, said so
        embedder, embed_name = None, f"none ({exc})"
    for book in res.books:
        scenes = [s for s in book.scenes if not s.is_reference]
        file = out / book.meta.book_id / "06_summaries.json"
        stored = json.loads(file.read_text()) if file.is_file() else {}
        summaries = [
            RunningSummary.model_validate(stored[str(s.scene_id)], context={"word_budgets": False})
            if str(s.scene_id) in stored
            else None
            for s in scenes
        ]
        faith.append(summary_faithfulness([s.text for s in scenes], summaries))
        pairs = [(s.instruction, s.text) for s in scenes if s.instruction]
        if embedder is not None and len(pairs) >= 2:
            adherence.append(
                instruction_adherence(
                    [p[0] for p in pairs], [p[1] for p in pairs], lambda texts: embedder.embed(texts).tolist()
                )
            )
    return {
        "stats": {k: v.model_dump() for k, v in res.stats.items()},
        "faith": faith,
        "adherence": adherence,
        "embedder": embed_name,
    }


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="recipe overrides, e.g. llm.backend=openai llm.model=...")
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "prep" / "default.yaml"))
    ap.add_argument("--books", nargs="*", default=DEFAULT_BOOKS)
    ap.add_argument("--chapters", type=int, default=2, help="first N chapters of each book")
    ap.add_argument("--tolerance", type=int, default=1, help="blocks a predicted start may be off by")
    ap.add_argument(
        "--window-tokens", type=int, default=2500, help="tokens of one segmentation window (the recipe's: 6000)"
    )
    ap.add_argument("--json", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        recipe = load_recipe(
            args.recipe,
            [
                f"output_dir={tmp}",
                "name=quality",
                f"max_chapters={args.chapters}",
                "stages.on_failure=flag",
                "segmentation.method=blocks",
                "segmentation.include_reference=false",
                *args.overrides,
            ],
            kind="prep",
        )
        counter = load_token_counter(recipe.tokenizer)
        books = [prep_book(ROOT / b if not Path(b).is_absolute() else Path(b), recipe, counter) for b in args.books]
        words = sum(b.meta.word_count for b in books)
        t0 = time.perf_counter()
        engine = make_engine(recipe.llm)
        try:
            seg = segmentation(engine, books, recipe, args.tolerance)
            t_seg = time.perf_counter() - t0
            rest = summaries_and_instructions(engine, books, recipe, counter, Path(tmp))
        finally:
            engine.close()
        wall = time.perf_counter() - t0

    print(
        f"# stage_quality — {time.strftime('%Y-%m-%d')}, {platform.node()} ({os.cpu_count()} CPUs), novelcraft "
        f"{__version__}, python {platform.python_version()}"
    )
    print(
        f"\nengine {recipe.llm.identity() if recipe.llm else '-'}; books {', '.join(Path(b).name for b in args.books)},"
        " "
        f"first {args.chapters} chapters ({words} words); {wall:.0f} s in all (segmentation {t_seg:.0f} s); load "
        f"average {' '.join(f'{x:.2f}' for x in load0)} -> {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"command: python benchmarks/stage_quality.py {' '.join(args.overrides)}\n"
    )
    print(
        f"## Segmentation ({seg['windows']} windows: "
        + ", ".join(f"{n} {k}" for k, n in seg["by_kind"].items())
        + f"; {seg['answered']} answered by the model, the rest fell back; tolerance {args.tolerance} block)\n"
    )
    print("| predictor | gold starts | predicted | precision | recall | F1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in (("model", seg["model"]), ("size-based fallback (floor)", seg["floor"])):
        print(f"| {name} | {s.gold} | {s.predicted} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} |")
    faith = rest["faith"]
    print("\n## Summaries\n")
    print("| book | summaries | naming anyone | name precision | name recall | within word budgets | drift |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for b, f in zip(books, faith):
        drift = f"{f.drift:+.2f}" if f.drift is not None else "–"
        precision = f"{f.name_precision:.2f}" if f.name_precision is not None else "–"
        print(
            f"| {b.meta.book_id} | {f.summaries} | {f.naming} | {precision} | {f.name_recall:.2f} | "
            f"{f.within_budget:.2f} | {drift} |"
        )
    print(f"\n## Instructions (embedder {rest['embedder']})\n")
    if rest["adherence"]:
        print("| book | top-1 own scene | mean rank | margin |")
        print("|---|---:|---:|---:|")
        for b, a in zip(books, rest["adherence"]):
            print(f"| {b.meta.book_id} | {a['top1']:.2f} | {a['mean_rank']:.1f} | {a['margin']:.3f} |")
    else:
        print("not measured (no embedder, or fewer than two instructions)")
    print("\n## Gate pass rates\n")
    print("| stage | items | accepted | flagged | failed (fallback) | retries per item | compressions per item |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for stage, st in rest["stats"].items():
        items = st["calls"] - st["retries"] - st["compressions"] + st["reused"]
        if items <= 0:
            continue
        accepted = items - st["flagged"] - st["failed"]
        print(
            f"| {stage} | {items} | {accepted / items:.2f} | {st['flagged'] / items:.2f} | {st['failed'] / items:.2f} "
            f"| {st['retries'] / items:.2f} | {st['compressions'] / items:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "segmentation": {k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in seg.items()},
                    "summaries": [f.as_dict() for f in faith],
                    "instructions": rest["adherence"],
                    "stats": rest["stats"],
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

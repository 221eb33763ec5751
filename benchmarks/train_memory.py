"""CPU benchmark of the training estimate: measured peak memory of real 2-step runs vs the estimate.

Run from the repository root with the tool venvs (``bash scripts/toolenv.sh axolotl swift``)::

    OMP_NUM_THREADS=1 python benchmarks/train_memory.py [--tools axolotl swift] [--json OUT]
    OMP_NUM_THREADS=1 python benchmarks/train_memory.py > benchmarks/results/train_memory_cpu.md

For each tool it trains the shipped CPU smoke recipe (``recipes/train/<tool>-cpu-smoke.yaml``: 2 optimizer
steps and one evaluation, LoRA r=8 on attention and expert_r=4 on the fused experts, 4-bit base) on the
tiny random Qwen3-MoE of ``novelcraft make-tiny-moe`` twice: with five copies of one long peer record
(~3,500 tokens) and with five copies of a short one (~400 tokens), so that every trained and evaluated
sample has the same length. It reports the peak RSS of the tool's process tree (``stats.json``,
``peak_rss_mib``: Linux ``wait4``) next to :func:`novelcraft.train.estimate_train` for the same recipe
and data: the total, its tensor part, and the long-minus-short difference (the sequence-dependent
memory, which on this model is almost all loss memory: the vocabulary has 151,936 entries).

It measures CPU memory only: nothing here says anything about GPU memory (see ``train_qlora.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from novelcraft.errors import NovelcraftError
from novelcraft.recipes import load_recipe
from novelcraft.train import (
    estimate_train,
    find_toolenv,
    make_tiny_qwen3_moe,
    run_train,
)
from novelcraft.train.toolenv import tool_env, tool_python

MIB = 2**20
PEER = ROOT / "tests/data/peer_sample.jsonl"


def uniform_records(out: Path, words: int | None) -> Path:
    """Five copies of the first peer record, its user and assistant turns cut to ``words`` words."""
    rec = json.loads(PEER.read_text(encoding="utf-8").splitlines()[0])
    if words:
        rec["messages"][1]["content"] = " ".join(rec["messages"][1]["content"].split()[: words // 2])
        rec["messages"][2]["content"] = " ".join(rec["messages"][2]["content"].split()[:words])
    out.write_text((json.dumps(rec, ensure_ascii=False) + "\n") * 5, encoding="utf-8")
    return out


def tool_versions(tool: str, venv: Path) -> dict:
    packages = ["axolotl" if tool == "axolotl" else "ms-swift", "torch", "transformers", "peft", "bitsandbytes"]
    code = f"import json, importlib.metadata as m; print(json.dumps({{p: m.version(p) for p in {packages!r}}}))"
    proc = subprocess.run(
        [tool_python(venv), "-c", code], env=tool_env(venv), capture_output=True, text=True, check=False
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}


def measure(tool: str, model: Path, data: Path, work: Path, name: str) -> dict:
    recipe = load_recipe(
        ROOT / f"recipes/train/{tool}-cpu-smoke.yaml",
        [f"output_dir={work}", f"name={name}", f"base_model={model}", f"data.train={data}", f"data.validation={data}"],
    )
    est = estimate_train(recipe)
    load_before = os.getloadavg()[0]
    result = run_train(recipe, check=False, echo=None)
    runtimes = _train_runtimes(result.run_dir / "train.log")  # the trainer's own figure, without start-up
    runtime = float(runtimes[-1]) if runtimes else None
    return {
        "tool": tool,
        "records_tokens": est.data.longest if est.data else None,
        "trained_tokens": est.data.longest_supervised if est.data else None,
        "estimate_total_mib": round(est.total_bytes / MIB, 1),
        "estimate_tensors_mib": round((est.total_bytes - est.item("runtime")) / MIB, 1),
        "estimate_runtime_mib": round(est.item("runtime") / MIB, 1),
        "measured_peak_rss_mib": result.stats.get("peak_rss_mib"),
        "wall_s": result.stats.get("seconds"),
        "train_runtime_s": runtime,
        "load_1min_before": round(load_before, 2),
        "global_step": result.stats.get("global_step"),
    }


def _train_runtimes(log: Path) -> list[str]:
    import re

    return re.findall(r"'train_runtime': '?([0-9.]+)", log.read_text(encoding="utf-8", errors="replace"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tools", nargs="+", default=["axolotl", "swift"], choices=["axolotl", "swift"])
    ap.add_argument("--short-words", type=int, default=120, help="assistant words of the short records")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    venvs = {}
    for tool in args.tools:
        try:
            venvs[tool] = find_toolenv(tool)
        except NovelcraftError as exc:
            print(f"train_memory: {exc}", file=sys.stderr)
            return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="nc-trainmem-") as tmp:
        work = Path(tmp)
        model = make_tiny_qwen3_moe(work / "tiny-qwen3-moe")
        long_data = uniform_records(work / "long.jsonl", None)
        short_data = uniform_records(work / "short.jsonl", args.short_words)
        for tool in args.tools:
            for label, data in (("long", long_data), ("short", short_data)):
                print(f"train_memory: {tool} {label} ...", file=sys.stderr)
                rows.append({"records": label, **measure(tool, model, data, work, f"{tool}-{label}")})
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})",
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "versions": {tool: tool_versions(tool, v) for tool, v in venvs.items()},
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"# train_memory - {report['date']}, {report['machine']}, Python {report['python']}, "
        f"OMP_NUM_THREADS={report['omp_num_threads']}\n"
    )
    for tool, v in report["versions"].items():
        print(f"- {tool} venv: " + ", ".join(f"{k} {x}" for k, x in v.items()))
    print(
        "\nPeak RSS of the tool's process tree (measured) against `novelcraft.train.estimate_train` "
        "(computed) for the CPU smoke recipes on the tiny random Qwen3-MoE; 2 optimizer steps + 1 evaluation.\n"
    )
    print(
        "| tool | records | tokens (trained) | estimate MiB (tensors + process) | measured peak RSS MiB | error | "
        "train_runtime s | load before |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        err = (r["estimate_total_mib"] - r["measured_peak_rss_mib"]) / r["measured_peak_rss_mib"]
        print(
            f"| {r['tool']} | {r['records']} | {r['records_tokens']} ({r['trained_tokens']}) | "
            f"{r['estimate_total_mib']:,.0f} ({r['estimate_tensors_mib']:,.0f} + {r['estimate_runtime_mib']:,.0f}) | "
            f"{r['measured_peak_rss_mib']:,.0f} | {err:+.1%} | {r['train_runtime_s']} | {r['load_1min_before']} |"
        )
    print("\n| tool | estimated long - short MiB | measured long - short MiB | error |")
    print("|---|---|---|---|")
    for tool in args.tools:
        lo, sh = (next(r for r in rows if r["tool"] == tool and r["records"] == k) for k in ("long", "short"))
        est = lo["estimate_tensors_mib"] - sh["estimate_tensors_mib"]
        meas = lo["measured_peak_rss_mib"] - sh["measured_peak_rss_mib"]
        print(f"| {tool} | {est:,.0f} | {meas:,.0f} | {(est - meas) / meas:+.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

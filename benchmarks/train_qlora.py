"""GPU benchmark of the Axolotl QLoRA recipe on a small random Qwen3-MoE: peak memory and step time.

Run from the repository root on a machine with a CUDA GPU and the axolotl venv
(``bash scripts/toolenv.sh axolotl``)::

    python benchmarks/train_qlora.py [--steps 10] [--layers 8] [--experts 32] [--json OUT]
    python benchmarks/train_qlora.py > benchmarks/results/train_qlora.md

It builds a random ``Qwen3MoeForCausalLM`` (real Qwen3 tokenizer, fused experts) with
:func:`novelcraft.train.make_tiny_qwen3_moe`, renders ``recipes/train/axolotl-qlora-r64.yaml`` for it
(4-bit base, ``quantize_moe_experts``, LoRA r=64 on attention and on the experts, 4096-token samples
from ``tests/data/peer_sample.jsonl``), trains ``--steps`` optimizer steps with ``novelcraft.train.run_train``
and reports what axolotl's trainer logged: peak allocated / reserved CUDA memory and seconds per step.
With ``--compare`` it trains once more with ``quantize_moe_experts: false`` (experts left in bf16).

Without CUDA it prints why and exits with status 2: no number is made up on a CPU.

``--full-shape`` measures Qwen3-30B-A3B's exact shapes (the published config, RANDOM weights) instead, for
the axolotl QLoRA recipe with and without 4-bit experts and for the swift recipe, at 4096-token samples,
in the current interpreter (torch + CUDA, transformers, peft, bitsandbytes; no tool venv): see
``benchmarks/_full_shape.py`` and ``benchmarks/gpu/run_full_shape.sh``. ``--write-plan`` regenerates
its plan (``benchmarks/gpu/full_shape_plan.json``) from the shipped recipes, on any machine.
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
sys.path.insert(0, str(ROOT / "benchmarks"))


def cuda_info(venv: Path) -> dict | None:
    from novelcraft.train.toolenv import tool_env, tool_python

    code = (
        "import json, torch\n"
        "ok = torch.cuda.is_available()\n"
        "print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, 'ok': ok,"
        " 'device': torch.cuda.get_device_name(0) if ok else None,"
        " 'memory_gib': round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if ok else None}))\n"
    )
    proc = subprocess.run(
        [tool_python(venv), "-c", code], env=tool_env(venv), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return None
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return info if info["ok"] else None


def run_once(model: Path, work: Path, steps: int, quantize_experts: bool, data: Path) -> dict:
    from novelcraft.recipes import load_recipe
    from novelcraft.train import run_train

    name = f"bench-qlora-{'qmoe' if quantize_experts else 'bf16experts'}"
    recipe = load_recipe(
        ROOT / "recipes/train/axolotl-qlora-r64.yaml",
        [
            f"name={name}",
            f"output_dir={work}",
            f"base_model={model}",
            f"data.train={data}",
            "data.validation=null",
            f"training.max_steps={steps}",
            "training.epochs=1",
            "training.saves_per_epoch=1",
            f"quantize_moe_experts={str(quantize_experts).lower()}",
        ],
    )
    start = time.perf_counter()
    result = run_train(recipe, echo=sys.stderr)
    wall = time.perf_counter() - start
    states = sorted((result.run_dir / "output").rglob("trainer_state.json"), key=lambda p: p.stat().st_mtime)
    history = json.loads(states[-1].read_text())["log_history"] if states else []
    peaks = {
        k: max((h[k] for h in history if k in h), default=None)
        for k in ("memory/max_allocated (GiB)", "memory/device_reserved (GiB)", "memory/max_active (GiB)")
    }
    final = next((h for h in reversed(history) if "train_runtime" in h), {})
    return {
        "quantize_moe_experts": quantize_experts,
        "steps": steps,
        "train_runtime_s": final.get("train_runtime"),
        "s_per_step": (final["train_runtime"] / steps) if final.get("train_runtime") else None,
        "wall_s_including_load": round(wall, 1),
        "peak_allocated_gib": peaks["memory/max_allocated (GiB)"],
        "peak_reserved_gib": peaks["memory/device_reserved (GiB)"],
        "final_loss": next((h["loss"] for h in reversed(history) if "loss" in h), None),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--steps", type=int, default=None, help="optimizer steps (default 10; --full-shape: 1 after a warm-up)"
    )
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--experts", type=int, default=32)
    ap.add_argument("--experts-per-tok", type=int, default=4)
    ap.add_argument("--moe-intermediate", type=int, default=512)
    ap.add_argument("--data", type=Path, default=ROOT / "tests/data/peer_sample.jsonl")
    ap.add_argument("--compare", action="store_true", help="also run with quantize_moe_experts: false")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--full-shape", action="store_true", help="Qwen3-30B-A3B's real shapes, random weights (no tool venv)"
    )
    ap.add_argument("--write-plan", action="store_true", help="regenerate benchmarks/gpu/full_shape_plan.json and exit")
    ap.add_argument("--variants", nargs="*", help="--full-shape: only these plan variants")
    ap.add_argument("--site", type=Path, default=None, help="--full-shape: folder with the carried packages")
    ap.add_argument("--timeout", type=int, default=420, help="--full-shape: seconds per variant")
    args = ap.parse_args(argv)
    if args.write_plan or args.full_shape:
        import _full_shape as fs

        if args.write_plan:
            print(fs.write_plan())
            return 0
        return fs.run_full_shape(
            plan_path=fs.PLAN, names=args.variants, steps=args.steps or 1,
            site=args.site or fs.SITE, json_out=args.json, timeout_s=args.timeout,
        )  # fmt: skip
    from novelcraft.errors import NovelcraftError
    from novelcraft.train import find_toolenv, make_tiny_qwen3_moe

    args.steps = args.steps or 10

    try:
        venv = find_toolenv("axolotl")
    except NovelcraftError as exc:
        print(f"train_qlora: {exc}", file=sys.stderr)
        return 2
    cuda = cuda_info(venv)
    if cuda is None:
        print(
            "train_qlora: no CUDA device is visible to the axolotl venv's torch; this benchmark measures GPU "
            "memory and step time of quantize_moe_experts QLoRA and has nothing to measure here.",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="nc-bench-") as tmp:
        work = Path(tmp)
        model = make_tiny_qwen3_moe(
            work / "model",
            hidden_size=args.hidden,
            num_hidden_layers=args.layers,
            num_experts=args.experts,
            num_experts_per_tok=args.experts_per_tok,
            moe_intermediate_size=args.moe_intermediate,
        )
        n_params = json.loads((model / ".novelcraft-tiny-model").read_text())["parameters"]
        runs = [run_once(model, work, args.steps, True, args.data)]
        if args.compare:
            runs.append(run_once(model, work, args.steps, False, args.data))
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.node(),
        "cuda": cuda,
        "model": {
            "hidden": args.hidden,
            "layers": args.layers,
            "experts": args.experts,
            "experts_per_tok": args.experts_per_tok,
            "moe_intermediate": args.moe_intermediate,
            "parameters": n_params,
        },
        "recipe": "recipes/train/axolotl-qlora-r64.yaml (r=64, 4096-token samples, micro batch 1, grad accum 8)",
        "runs": runs,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"# train_qlora — {report['date']}, {cuda['device']} ({cuda['memory_gib']} GiB), torch {cuda['torch']}\n")
    print(
        f"Random Qwen3-MoE, {n_params / 1e6:.0f}M parameters ({args.layers} layers, {args.experts} experts, "
        f"{args.experts_per_tok} active, hidden {args.hidden}); {report['recipe']}; {args.steps} steps.\n"
    )
    print(
        "| quantize_moe_experts | s/step | peak allocated GiB | peak reserved GiB | wall s (with load) | final loss |"
    )
    print("|---|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r['quantize_moe_experts']} | {r['s_per_step']} | {r['peak_allocated_gib']} | "
            f"{r['peak_reserved_gib']} | {r['wall_s_including_load']} | {r['final_loss']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

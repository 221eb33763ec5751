"""``train_qlora.py --full-shape`` / ``--write-plan``: Qwen3-30B-A3B's exact shapes with RANDOM weights.

``--write-plan`` (any machine with novelcraft and torch; no GPU, no weights) turns the shipped QLoRA
recipes into ``benchmarks/gpu/full_shape_plan.json``: per variant, the settings a training step needs
and novelcraft's estimate for it. ``--full-shape`` (a CUDA machine; see ``benchmarks/gpu/``) runs each
variant in its own process (``_full_shape_step.py``, which needs only torch, transformers, peft and
bitsandbytes) and prints measured peak memory and seconds per optimizer step next to the estimate.
Without CUDA it says so and exits with status 2: no figure is made up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "benchmarks/gpu/full_shape_plan.json"
SITE = ROOT / "benchmarks/gpu/site"
STEP = ROOT / "benchmarks/_full_shape_step.py"
MODEL = "Qwen/Qwen3-30B-A3B-Instruct-2507"
#: (variant, recipe, overrides): the axolotl QLoRA recipe with and without 4-bit experts (the latter loads
#: them in bf16 and trains them upcast to fp32, as axolotl does), and swift's.
VARIANTS = [
    ("axolotl-qlora-r64", "recipes/train/axolotl-qlora-r64.yaml", []),
    ("axolotl-qlora-r64-bf16-experts", "recipes/train/axolotl-qlora-r64.yaml", ["quantize_moe_experts=false"]),
    ("swift-qlora-r64", "recipes/train/swift-qlora-r64.yaml", []),
]
#: The PEFT each tool's venv pins (scripts/toolenv.sh); its expert-LoRA code differs in memory.
PEFT_PIN = {"axolotl": "0.21.2", "swift": "0.20.0"}
SEQUENCE_LEN = 4096
#: A compiled record of the default budget: a scene of up to 3,000 tokens after ~1,100 of context.
TRAINED_TOKENS = 3000
RANDOM = "RANDOM WEIGHTS, real shapes"


def build_plan() -> dict:
    """The plan from the shipped recipes (needs novelcraft, pydantic and torch for the meta build)."""
    sys.path.insert(0, str(ROOT))
    from novelcraft.recipes import load_recipe
    from novelcraft.train.datastats import DataStats
    from novelcraft.train.estimate import GIB, estimate_memory
    from novelcraft.train.shape import load_model_config, model_shape

    config, _ = load_model_config(MODEL)
    shape = model_shape(config)
    data = DataStats(
        path=f"synthetic: {SEQUENCE_LEN}-token records, {TRAINED_TOKENS} trained", sequence_len=SEQUENCE_LEN,
        records=1, kept_records=1, tokens=SEQUENCE_LEN, supervised_tokens=TRAINED_TOKENS, longest=SEQUENCE_LEN,
        longest_supervised=TRAINED_TOKENS,
    )  # fmt: skip
    variants = []
    for name, path, overrides in VARIANTS:
        r = load_recipe(ROOT / path, overrides)
        est = estimate_memory(r, shape, data=data)
        nf4 = r.quantization == "nf4"
        t = r.training
        variants.append(
            {
                "name": name,
                "recipe": path,
                "overrides": overrides,
                "tool": r.tool,
                "peft": PEFT_PIN[r.tool],
                "config": {
                    k: v for k, v in config.items() if k not in ("architectures", "torch_dtype", "transformers_version")
                },
                "quantize_linear": nf4,
                "quantize_experts": nf4 and r.quantize_moe_experts,
                "upcast_experts_fp32": nf4 and r.tool == "axolotl" and not r.quantize_moe_experts,
                "loss_on_trained_only": r.tool == "swift",
                "r": r.lora.r,
                "alpha": r.lora.alpha,
                "expert_r": r.lora.expert_rank,
                "expert_alpha": r.lora.expert_lora_alpha,
                "target_modules": r.lora.target_modules,
                "target_parameters": r.lora.target_parameters,
                "optimizer": t.optimizer,
                "micro_batch_size": t.micro_batch_size,
                "gradient_accumulation_steps": t.gradient_accumulation_steps,
                "gradient_checkpointing": t.gradient_checkpointing,
                "sequence_len": SEQUENCE_LEN,
                "trained_tokens": TRAINED_TOKENS,
                "seed": 0,
                "estimate": {
                    "total_gib": round(est.total_gib, 2),
                    "tensors_gib": round((est.total_bytes - est.item("runtime")) / GIB, 2),
                    "adapter_params": est.adapter_params,
                    "items": [[m.name, round(m.bytes / GIB, 2), m.note] for m in est.memory],
                },
            }
        )
    return {
        "generated_by": "python benchmarks/train_qlora.py --write-plan",
        "model": f"{MODEL}: the published config (novelcraft/resources/train/configs), {RANDOM}",
        "variants": variants,
    }


def write_plan(path: Path = PLAN) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_plan(), indent=1) + "\n", encoding="utf-8")
    return path


def _cuda() -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "device": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }


def _env_for(peft_pin: str, site: Path) -> tuple[dict, list[str]]:
    """PYTHONPATH with the carried bitsandbytes and the tool's PEFT pin, where they were installed."""
    env, notes = dict(os.environ), []
    paths = [str(p) for p in (site / f"peft-{peft_pin}", site / "bitsandbytes") if p.is_dir()]
    if not (site / f"peft-{peft_pin}").is_dir():
        notes.append(f"peft {peft_pin} not in {site}: the installed peft is used")
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).strip(os.pathsep)
    return env, notes


def run_full_shape(
    *, plan_path: Path, names: list[str] | None, steps: int, site: Path, json_out: Path | None, timeout_s: int
) -> int:
    cuda = _cuda()
    if cuda is None:
        print(
            "train_qlora --full-shape: torch sees no CUDA device here; this mode measures GPU memory and step "
            "time of Qwen3-30B-A3B's full shapes and has nothing to measure without one (no figures printed).",
            file=sys.stderr,
        )
        return 2
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    todo = [v for v in plan["variants"] if not names or v["name"] in names]
    rows = []
    for v in todo:
        env, notes = _env_for(v["peft"], site)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(v, fh)
        print(f"train_qlora --full-shape: {v['name']} ({RANDOM}) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, str(STEP), fh.name, "--device", "cuda", "--steps", str(steps)],
                env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
            )  # fmt: skip
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            measured = json.loads(lines[-1]) if lines else {"error": " | ".join(proc.stderr.strip().splitlines()[-3:])}
        except subprocess.TimeoutExpired:
            measured = {"error": f"no result within {timeout_s} s"}
        finally:
            os.unlink(fh.name)
        measured["wall_s"] = round(time.perf_counter() - t0, 1)
        rows.append({"variant": v["name"], "recipe": v["recipe"], "overrides": v["overrides"], "notes": notes,
                     "estimate": v["estimate"], "measured": measured})  # fmt: skip
    report = {"date": time.strftime("%Y-%m-%d"), "cuda": cuda, "model": plan["model"], "steps": steps, "rows": rows}
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"# train_qlora --full-shape - {report['date']}, {cuda['device']} ({cuda['memory_gib']} GiB), "
        f"torch {cuda['torch']}\n"
    )
    print(
        f"**{RANDOM}**: {plan['model']}. {SEQUENCE_LEN}-token samples ({TRAINED_TOKENS} trained), micro batch 1, "
        f"one warm-up step, then {steps} timed optimizer step(s) of the recipe's gradient accumulation.\n"
    )
    print(
        "| variant (random weights) | peak allocated GiB | peak reserved GiB | estimate GiB (tensors / with runtime) | "
        "s / optimizer step | tokens / s | all lora_B got gradients | versions |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        m, e = r["measured"], r["estimate"]
        if "error" in m:
            print(f"| {r['variant']} | failed: {m['error']} | | {e['tensors_gib']} / {e['total_gib']} | | | | |")
            continue
        s = m.get("s_per_optimizer_step") or []
        sps = sum(s) / len(s) if s else None
        tps = m["tokens_per_optimizer_step"] / sps if sps else None
        oom = f" (OOM: {m['oom'][:80]})" if m.get("oom") else ""
        vers = ", ".join(f"{k} {x}" for k, x in m.get("versions", {}).items() if x)
        print(
            f"| {r['variant']} | {m.get('peak_allocated_gib')}{oom} | {m.get('peak_reserved_gib')} | "
            f"{e['tensors_gib']} / {e['total_gib']} | {sps and round(sps, 2)} | {tps and round(tps)} | "
            f"{m.get('lora_B_grads_nonzero')} | {vers} |"
        )
    return 0 if all("error" not in r["measured"] for r in rows) else 1

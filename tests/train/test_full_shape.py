"""The prepared full-shape GPU benchmark (``benchmarks/train_qlora.py --full-shape``), checked on CPU:
its plan is the shipped recipes', it refuses to run without CUDA, and its step runner works (tiny shapes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from novelcraft.train.toolenv import tool_env, tool_python

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "benchmarks/gpu/full_shape_plan.json"


def test_plan_is_generated_from_the_shipped_recipes():
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _full_shape

    fresh = _full_shape.build_plan()
    assert json.loads(PLAN.read_text(encoding="utf-8")) == json.loads(json.dumps(fresh)), (
        "regenerate with: python benchmarks/train_qlora.py --write-plan"
    )
    names = [v["name"] for v in fresh["variants"]]
    assert names == ["axolotl-qlora-r64", "axolotl-qlora-r64-bf16-experts", "swift-qlora-r64"]
    q, bf16, swift = fresh["variants"]
    assert q["quantize_experts"] and not bf16["quantize_experts"] and bf16["upcast_experts_fp32"]
    assert swift["loss_on_trained_only"] and (q["peft"], swift["peft"]) == ("0.21.2", "0.20.0")
    assert q["config"]["num_experts"] == 128 and q["sequence_len"] == 4096 and "RANDOM WEIGHTS" in fresh["model"]
    assert q["estimate"]["total_gib"] < swift["estimate"]["total_gib"] < bf16["estimate"]["total_gib"]


def test_wheels_fit_one_transfer():
    lines = [
        ln.split()
        for ln in (ROOT / "benchmarks/gpu/wheels.txt").read_text(encoding="utf-8").splitlines()
        if ln and not ln.startswith("#")
    ]
    assert {f.split("-")[0] + "==" + f.split("-")[1] for _, f in lines} == {
        "bitsandbytes==0.50.2",
        "peft==0.21.2",
        "peft==0.20.0",
    }
    wheels = ROOT / "benchmarks/gpu/wheels"
    if wheels.is_dir():  # fetched (git-ignored): 64 MiB is the most one transfer carries
        assert sum(p.stat().st_size for p in wheels.glob("*.whl")) < 64 * 2**20


def test_full_shape_without_cuda_says_why_and_prints_no_figures():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: this checks the refusal on a CPU machine")
    proc = subprocess.run(
        [sys.executable, ROOT / "benchmarks/train_qlora.py", "--full-shape"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert "no CUDA device" in proc.stderr and "no figures printed" in proc.stderr


def _tiny_variant(plan_variant: dict, tiny_model: Path, tmp_path: Path) -> Path:
    cfg = json.loads((tiny_model / "config.json").read_text(encoding="utf-8"))
    for k in ("architectures", "dtype", "torch_dtype", "transformers_version"):
        cfg.pop(k, None)
    v = dict(plan_variant, config=cfg, r=8, alpha=16, expert_r=4, expert_alpha=8, sequence_len=256, trained_tokens=160,
             gradient_accumulation_steps=2)  # fmt: skip
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(v), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("index, tool", [(0, "axolotl"), (1, "axolotl"), (2, "swift")])
def test_step_runner_on_tiny_shapes(index, tool, tmp_path, tiny_model, venv_or_skip):
    """Each plan variant's code path (4-bit experts, fp32 experts, logits of trained tokens only) on a tiny
    model in the tool's own venv (its PEFT and bitsandbytes): ranks as rendered, every lora_B trained,
    no parametrisation left behind after the steps."""
    venv = venv_or_skip(tool)
    variant = json.loads(PLAN.read_text(encoding="utf-8"))["variants"][index]
    proc = subprocess.run(
        [tool_python(venv), ROOT / "benchmarks/_full_shape_step.py", _tiny_variant(variant, tiny_model, tmp_path), "--device", "cpu", "--steps", "2"],
        env=tool_env(venv, cpu=True), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["random_weights"] is True and "random weights" in out["note"]
    assert out["ranks"] == {
        "q_proj": [8],
        "k_proj": [8],
        "v_proj": [8],
        "o_proj": [8],
        "gate_up_proj": [4],
        "down_proj": [4],
    }
    assert out["lora_B_grads_nonzero"] is True and out["oom"] is None and len(out["s_per_optimizer_step"]) == 2
    assert out["parametrizations_after"] == ([1] if variant["quantize_experts"] else [])
    assert out["versions"]["peft"] == variant["peft"]

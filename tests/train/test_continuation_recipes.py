"""Train recipes of the reasoning-continuation method: dense Qwen2.5 (LoRA on every projection, no
target_parameters) and Qwen3-30B-A3B (expert LoRA); rendered, estimated, checked by the tools themselves, and
(slow) the CPU smoke recipes run for real on a tiny dense Qwen2 with CRA records, loss on the assistant only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from novelcraft.recipes import load_recipe
from novelcraft.train.render import render_tool_config
from novelcraft.train.run import count_records, prepare_run, target_of, validate_with_tool
from novelcraft.train.toolenv import tool_env, tool_python

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes" / "continuation" / "train").glob("*.yaml"))
SAMPLE = ROOT / "tests" / "data" / "continuation_sample.jsonl"
TOOLS = Path(__file__).resolve().parent / "tools"
DENSE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _load(path: Path, tmp_path: Path, *extra: str):
    return load_recipe(path, [f"output_dir={tmp_path}", *extra], kind="train")


def test_every_model_and_tool_is_covered():
    bases = {(r.base_model, r.tool) for r in (load_recipe(p) for p in RECIPES)}
    for model in ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-32B-Instruct", "Qwen/Qwen3-30B-A3B-Instruct-2507"):
        assert {(model, "axolotl"), (model, "swift")} <= bases
    quant = {load_recipe(p).quantization for p in RECIPES if "7b" in p.name}
    assert quant == {"nf4", "none"}  # QLoRA and LoRA


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_render_dense_and_moe_targets(path, tmp_path):
    r = _load(path, tmp_path)
    cfg = render_tool_config(r, tmp_path / "run").config
    dense = r.model_type == "qwen2"
    if r.tool == "axolotl":
        assert cfg["chat_template"] == "jinja" and "<|im_start|>" in cfg["chat_template_jinja"]
        assert cfg["datasets"][0]["roles_to_train"] == ["assistant"] and cfg["datasets"][0]["train_on_eos"] == "turn"
        targets, params = cfg["lora_target_modules"], cfg.get("lora_target_parameters")
    else:
        assert cfg["template"] == "qwen3_nothinking" and cfg["loss_scale"] == "default"
        assert cfg["model_type"] == r.model_type
        targets, params = cfg["target_modules"], cfg.get("target_parameters")
    if dense:
        assert targets == DENSE and params is None
    else:
        assert params == ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"] and "gate" not in targets


@pytest.mark.parametrize("path", [p for p in RECIPES if "smoke" not in p.name], ids=lambda p: p.stem)
def test_estimate_for_every_gpu_recipe(path, tmp_path):
    pytest.importorskip("torch")
    from novelcraft.train import estimate_train

    est = estimate_train(_load(path, tmp_path))
    assert est.fits and 5 < est.total_gib < 80
    if "qwen2.5-7b" in path.name:
        assert 7.6e9 < est.shape.total < 7.7e9 and est.shape.num_experts == 0
        assert {a.target for a in est.adapter} == set(DENSE)
    if "qwen2.5-32b" in path.name:
        assert 32.7e9 < est.shape.total < 32.8e9


def test_cra_records_are_trainable_data():
    assert count_records(SAMPLE) == 2


# --------------------------------------------------------------------------- real tools (slow)


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from novelcraft.train import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "tiny-qwen2")


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["axolotl", "swift"])
def test_every_continuation_recipe_validates_with_the_tool(tool, tmp_path, tiny_qwen2, venv_or_skip):
    venv = venv_or_skip(tool)
    configs, targets, local = [], [], []
    for path in RECIPES:
        smoke = "smoke" in path.name
        r = _load(path, tmp_path, *([f"base_model={tiny_qwen2}"] if smoke else []))
        if r.tool == tool:
            configs.append(prepare_run(r, require_data=False).config_path)
            targets.append(target_of(r))
            local.append(smoke)
    results = validate_with_tool(tool, configs, venv, post_init=local, targets=targets)
    assert [(res.config_path.name, res.ok, res.error) for res in results] == [(c.name, True, None) for c in configs]


def _counts(tmp_path: Path, counter, template_name: str) -> Path:
    from novelcraft.chat_format import load_chat_template

    template = load_chat_template(template_name)
    rows = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines() if x.strip()]
    counts = [[r["messages"][-1]["content"], counter.count(template.render(r["messages"]))] for r in rows]
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(counts), encoding="utf-8")
    return path


def _adapter_targets(adapter: Path) -> dict[str, int]:
    from safetensors import safe_open

    out: dict[str, int] = {}
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as fh:
        for key in fh.keys():
            if "lora_B" in key:
                module = key.split(".lora_B")[0].rsplit(".", 1)[-1]
                out[module] = out.get(module, 0) + int(fh.get_tensor(key).abs().sum() > 0)
    return out


@pytest.mark.slow
def test_axolotl_cra_labels_and_two_steps(tmp_path, tiny_qwen2, venv_or_skip, counter):
    venv = venv_or_skip("axolotl")
    from novelcraft.train import run_train

    r = _load(ROOT / "recipes/continuation/train/axolotl-cpu-smoke.yaml", tmp_path, f"base_model={tiny_qwen2}")
    prepared = prepare_run(r)
    proc = subprocess.run(
        [venv / "bin" / "axolotl", "preprocess", prepared.config_path],
        env=tool_env(venv, cpu=True, extra={"HF_HUB_OFFLINE": "1"}),
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = _counts(tmp_path, counter, r.chat_template)
    proc = subprocess.run(
        [tool_python(venv), TOOLS / "inspect_labels.py", r.run_dir / "prepared", tiny_qwen2, SAMPLE, "--counts", counts],
        env=tool_env(venv, cpu=True), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    labels = json.loads(proc.stdout.strip().splitlines()[-1])
    # train + validation rows, each labelled exactly on <reasoning>…</answer><|im_end|>, as many tokens as counted
    assert labels["rows"] == 4 and labels["matched_records"] == 2 and labels["problems"] == []
    assert labels["counts_checked"] == 4
    result = run_train(r, check=False, echo=None)
    stats = json.loads((result.run_dir / "stats.json").read_text())
    assert stats["returncode"] == 0 and stats["global_step"] == 2 and stats["grad_norm"] > 0
    assert _adapter_targets(result.adapter_dir) == {m: 2 for m in DENSE}  # 2 layers, every B trained


@pytest.mark.slow
def test_swift_cra_labels_and_two_steps(tmp_path, tiny_qwen2, venv_or_skip, counter):
    venv = venv_or_skip("swift")
    from novelcraft.train import run_train
    from novelcraft.train.common import SWIFT_INSTRUCT_TEMPLATE

    r = _load(ROOT / "recipes/continuation/train/swift-cpu-smoke.yaml", tmp_path, f"base_model={tiny_qwen2}")
    counts = _counts(tmp_path, counter, r.chat_template)
    proc = subprocess.run(
        [tool_python(venv), TOOLS / "swift_labels.py", f"--model-type={r.model_type}", tiny_qwen2,
         SWIFT_INSTRUCT_TEMPLATE, counts, SAMPLE],
        env=tool_env(venv, cpu=True, extra={"HF_HUB_OFFLINE": "1"}),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rows"] == 2 and out["counts_checked"] == 2 and out["problems"] == []
    result = run_train(r, echo=None)
    stats = json.loads((result.run_dir / "stats.json").read_text())
    assert stats["returncode"] == 0 and stats["global_step"] == 2 and stats["grad_norm"] > 0
    assert _adapter_targets(result.adapter_dir) == {m: 2 for m in DENSE}
    assert yaml.safe_load(prepared_text(result.config_path))["model_type"] == "qwen2"


def prepared_text(path: Path) -> str:
    return Path(path).read_text(encoding="utf-8")

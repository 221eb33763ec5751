"""Rendering a train recipe into the native Axolotl / MS-SWIFT configuration (pure functions)."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from novelcraft.chat_format import instruct_2507_template
from novelcraft.errors import RecipeError
from novelcraft.recipes import load_recipe
from novelcraft.train import tool_keys
from novelcraft.train.common import (
    QWEN3_MOE_EXPERT_PARAMETERS,
    SWIFT_EXPERT_RANK_TUNER,
    SWIFT_INSTRUCT_TEMPLATE,
    managed_keys,
)
from novelcraft.train.render import SWIFT_PATTERN_PLUGIN, render_tool_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes" / "train").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_rendered_config_uses_only_tool_keys(path: Path, train_recipe):
    r = train_recipe(path)
    rendered = render_tool_config(r, r.run_dir, n_train=53)
    unknown = sorted(set(rendered.config) - tool_keys(r.tool))
    assert not unknown, unknown


def test_axolotl_render_for_qwen3_moe(train_recipe):
    r = train_recipe(ROOT / "recipes/train/axolotl-qlora-r64.yaml", "lora.expert_r=null")
    cfg = render_tool_config(r, r.run_dir).config
    assert cfg["adapter"] == "qlora" and cfg["load_in_4bit"] is True and cfg["quantize_moe_experts"] is True
    assert cfg["lora_target_parameters"] == QWEN3_MOE_EXPERT_PARAMETERS and cfg["lora_dropout"] == 0.0
    assert (cfg["lora_r"], cfg["lora_alpha"]) == (64, 128) and "lora_target_linear" not in cfg
    assert "lora_rank_pattern" not in cfg and "lora_alpha_pattern" not in cfg  # one rank for all targets
    assert cfg["chat_template"] == "jinja" and "<think>" not in cfg["chat_template_jinja"]
    ds = cfg["datasets"][0]
    assert ds["type"] == "chat_template" and ds["roles_to_train"] == ["assistant"] and ds["train_on_eos"] == "turn"
    assert Path(ds["path"]).is_absolute() and cfg["test_datasets"][0]["split"] == "train"
    assert cfg["sequence_len"] == 4096 and cfg["num_epochs"] == 3 and cfg["evals_per_epoch"] == 4
    assert cfg["output_dir"] == str((r.run_dir / "output").resolve())


def test_axolotl_renders_the_expert_rank_as_peft_patterns(train_recipe):
    r = train_recipe(ROOT / "recipes/train/axolotl-qlora-r64.yaml", "lora.expert_r=4", "lora.expert_alpha=null")
    cfg = render_tool_config(r, r.run_dir).config
    assert (cfg["lora_r"], cfg["lora_alpha"]) == (64, 128)
    # Keys are the target parameters: PEFT matches them as suffixes of e.g. model.layers.0.mlp.experts.gate_up_proj
    assert cfg["lora_rank_pattern"] == {"mlp.experts.gate_up_proj": 4, "mlp.experts.down_proj": 4}
    assert cfg["lora_alpha_pattern"] == {"mlp.experts.gate_up_proj": 8, "mlp.experts.down_proj": 8}


def test_swift_render_for_qwen3_moe(train_recipe):
    r = train_recipe(ROOT / "recipes/train/swift-qlora-r64.yaml", "lora.expert_r=null")
    rendered = render_tool_config(r, r.run_dir, n_train=53)
    cfg = rendered.config
    assert cfg["template"] == SWIFT_INSTRUCT_TEMPLATE == "qwen3_nothinking"
    assert cfg["model_type"] == "qwen3_moe" and cfg["tuner_type"] == "lora" and cfg["loss_scale"] == "default"
    assert cfg["quant_bits"] == 4 and cfg["bnb_4bit_quant_type"] == "nf4"
    assert cfg["target_parameters"] == QWEN3_MOE_EXPERT_PARAMETERS and cfg["lora_rank"] == 64
    assert cfg["split_dataset_ratio"] == 0.0 and len(cfg["val_dataset"]) == 1
    # 53 records / (1 x 8) = 7 steps per epoch, 4 evaluations per epoch -> every 1 step (7 // 4)
    assert cfg["eval_steps"] == 1 and cfg["save_steps"] == 7 and cfg["max_length"] == 4096
    assert "external_plugins" not in cfg and rendered.side_files == {}


def test_swift_renders_the_expert_rank_through_its_plugin_tuner(train_recipe):
    r = train_recipe(ROOT / "recipes/train/swift-qlora-r64.yaml", "lora.expert_r=4", "lora.expert_alpha=16")
    rendered = render_tool_config(r, r.run_dir, n_train=53)
    cfg = rendered.config
    assert cfg["tuner_type"] == SWIFT_EXPERT_RANK_TUNER and cfg["lora_rank"] == 64 and cfg["lora_alpha"] == 128
    plugin = rendered.side_files[SWIFT_PATTERN_PLUGIN]
    assert cfg["external_plugins"] == [str((r.run_dir / SWIFT_PATTERN_PLUGIN).resolve())]
    tree = ast.parse(plugin)  # valid Python with the patterns as literals
    values = {
        n.target.id: ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None
    }
    assert values["RANK_PATTERN"] == {"mlp.experts.gate_up_proj": 4, "mlp.experts.down_proj": 4}
    assert values["ALPHA_PATTERN"] == {"mlp.experts.gate_up_proj": 16, "mlp.experts.down_proj": 16}
    assert f'TUNER_NAME = "{SWIFT_EXPERT_RANK_TUNER}"' in plugin and "filled in when rendered" not in plugin


def test_multi_gpu_renders(train_recipe, tmp_path):
    r = train_recipe(ROOT / "recipes/train/axolotl-lora-r64-zero3.yaml")
    rendered = render_tool_config(r, r.run_dir)
    ds = json.loads(rendered.side_files["deepspeed_zero3.json"])
    assert ds["zero_optimization"]["stage"] == 3 and rendered.config["deepspeed"].endswith("deepspeed_zero3.json")
    assert rendered.config["adapter"] == "lora" and "load_in_4bit" not in rendered.config
    fsdp = render_tool_config(train_recipe(ROOT / "recipes/train/axolotl-lora-r64-fsdp.yaml"), tmp_path).config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_config"]["transformer_layer_cls_to_wrap"] == "Qwen3MoeDecoderLayer"
    sw = render_tool_config(train_recipe(ROOT / "recipes/train/swift-lora-r64-zero3.yaml"), tmp_path).config
    assert sw["deepspeed"] == "zero3"


def test_instruct_template_is_plain_chatml():
    jinja2 = pytest.importorskip("jinja2")
    template = jinja2.Environment().from_string(instruct_2507_template())
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    assert template.render(messages=msgs) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    )
    assert template.render(messages=msgs[:2], add_generation_prompt=True).endswith("<|im_start|>assistant\n")


# Every option of the recipe that changes which native keys are written, for both tools.
_VARIANTS = {
    "quant": [[], ["quantization=none", "quantize_moe_experts=false"], ["quantize_moe_experts=false"]],
    "validation": [[], ["data.validation=null"], ["training.eval_steps=5"], ["training.eval_steps=null"]],
    "steps": [[], ["training.max_steps=7"]],
    "dist": [
        [],
        ["quantization=none", "quantize_moe_experts=false", "distributed.strategy=fsdp", "distributed.num_gpus=2"],
        [
            "quantization=none",
            "quantize_moe_experts=false",
            "distributed.strategy=deepspeed_zero3",
            "distributed.num_gpus=2",
        ],
    ],
    "rank": [["lora.expert_r=null"], ["lora.expert_r=4"]],
    "model_type": [[], ["model_type=null"]],
}


def _rendered_keys(tool: str, device: str, template: str, tmp_path: Path) -> tuple[set[str], int]:
    base = ROOT / f"recipes/train/{tool}-{'cpu-smoke' if device == 'cpu' else 'qlora-r64'}.yaml"
    seen: set[str] = set()
    n = 0
    for combo in itertools.product(*_VARIANTS.values()):
        overrides = [o for group in combo for o in group] + [f"chat_template={template}", f"output_dir={tmp_path}"]
        if tool == "swift":
            overrides = [o for o in overrides if not o.startswith("quantize_moe_experts")]
        try:
            r = load_recipe(base, overrides)
        except (RecipeError, ValidationError):
            continue  # a combination the schema rejects (e.g. distributed training on CPU)
        for n_train in (None, 53):
            keys = set(render_tool_config(r, tmp_path, n_train=n_train).config)
            assert keys <= managed_keys(tool, device=device, chat_template=template), sorted(
                keys - managed_keys(tool, device=device, chat_template=template)
            )
            seen |= keys
            n += 1
    return seen, n


@pytest.mark.parametrize("tool", ["axolotl", "swift"])
@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("template", ["qwen3_instruct_2507", "tokenizer_default"])
def test_managed_keys_are_exactly_what_the_renderer_writes(tool, device, template, tmp_path):
    """recipe.py checks tool_config against managed_keys without rendering: the two must agree."""
    seen, n = _rendered_keys(tool, device, template, tmp_path)
    assert n >= 8
    managed = managed_keys(tool, device=device, chat_template=template)
    if device == "cpu":
        # Multi-GPU and 4-bit experts need CUDA: their keys are only written for GPU recipes.
        managed = managed - {"deepspeed", "fsdp_version", "fsdp_config", "fsdp", "quantize_moe_experts"}
    assert seen == managed, (sorted(managed - seen), sorted(seen - managed))

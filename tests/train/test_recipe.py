"""The ``kind: train`` recipe: shipped recipes, the strict schema, tool_config passthrough, expert rank."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from novelcraft.errors import RecipeError
from novelcraft.recipes import load_recipe
from novelcraft.train import TrainRecipe, tool_keys
from novelcraft.train.common import QWEN3_MOE_EXPERT_PARAMETERS, managed_keys
from novelcraft.train.render import render_tool_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes" / "train").glob("*.yaml"))
GPU_RECIPES = [p for p in RECIPES if "smoke" not in p.name]
QLORA = ROOT / "recipes/train/axolotl-qlora-r64.yaml"


# --------------------------------------------------------------------------- shipped recipes


def test_shipped_recipes_cover_the_matrix():
    names = {p.stem for p in RECIPES}
    assert {
        "axolotl-qlora-r64",
        "axolotl-qlora-r128",
        "swift-qlora-r64",
        "axolotl-cpu-smoke",
        "swift-cpu-smoke",
    } <= names
    strategies = {load_recipe(p).distributed.strategy for p in GPU_RECIPES}
    assert {"fsdp", "deepspeed_zero3"} <= strategies


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_opens_with_its_command_and_loads(path: Path):
    first = path.read_text(encoding="utf-8").splitlines()[:4]
    assert first[0].startswith("#")
    assert any(f"novelcraft train recipes/train/{path.name}" in line for line in first), first
    r = load_recipe(path)
    assert isinstance(r, TrainRecipe) and r.kind == "train" and r.version == 1
    assert r.lora.dropout == 0.0
    assert set(r.lora.target_parameters) == set(QWEN3_MOE_EXPERT_PARAMETERS)
    assert "gate" not in r.lora.target_modules and r.data.sequence_len == 4096
    assert r.chat_template == "qwen3_instruct_2507"


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.name)
def test_gpu_recipes_train_3_to_5_epochs_with_validation(path: Path):
    r = load_recipe(path)
    assert 3 <= r.training.epochs <= 5 and r.training.max_steps is None
    assert r.data.validation and r.device == "cuda" and r.training.precision == "bf16"
    assert r.base_model == "Qwen/Qwen3-30B-A3B-Instruct-2507"
    assert r.lora.r == (128 if "r128" in path.name else 64) and r.lora.alpha == 2 * r.lora.r
    if r.distributed.strategy == "none":
        assert r.quantization == "nf4"
        assert r.quantize_moe_experts == (r.tool == "axolotl")


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.name)
def test_gpu_recipes_give_the_experts_a_small_rank_of_their_own(path: Path):
    """Each expert has its own A/B pair: the shipped recipes keep the expert rank far below the
    attention rank, with the attention's alpha / r scaling, and say why in their comments."""
    r = load_recipe(path)
    assert r.lora.expert_r is not None and r.lora.expert_r * 8 <= r.lora.r
    assert r.lora.expert_lora_alpha * r.lora.r == r.lora.alpha * r.lora.expert_r
    comments = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    assert "expert_r" in comments and "novelcraft train" in comments and "--estimate" in comments


# --------------------------------------------------------------------------- strict schema


@pytest.mark.parametrize(
    "override, needle",
    [
        ("lora.rank=8", "lora.rank: unknown key"),
        ("training.epoch=3", "training.epoch: unknown key"),
        ("tool_config.lora_rr=4", "unknown axolotl key(s) lora_rr"),
        ("tool_config.lora_r=4", "lora_r already set by the recipe"),
        ("tool_config.lora_rank_pattern={q_proj: 4}", "lora_rank_pattern already set by the recipe"),
        ("lora.target_modules=[q_proj, gate]", "router"),
        ("lora.target_modules=[all-linear]", "router"),
        ("lora.dropout=0.05", "dropout must be 0"),
        ("tool=swift", "quantize_moe_experts is an axolotl option"),
        ("device=cpu", "needs CUDA"),
        ("distributed.num_gpus=4", "num_gpus > 1 needs strategy"),
        ("quantization=none", "quantize_moe_experts needs quantization: nf4"),
        ("lora.expert_r=0", "lora.expert_r: Input should be greater than or equal to 1"),
        ("lora.target_parameters=[]", "expert_r / expert_alpha need target_parameters"),  # recipes set expert_r
        ("estimate.mfu=[0.5, 0.1]", "mfu must be [low, high]"),
        ("estimate.tokens_per_second=[0, 10]", "tokens_per_second must be [low, high]"),
        ("estimate.mfu=[0.5, 2]", "at most 1"),
        ("estimate.gpu_memory=80", "estimate.gpu_memory: unknown key"),
    ],
)
def test_recipe_rejects_unknown_keys_and_bad_combinations(override, needle):
    with pytest.raises(RecipeError) as err:
        load_recipe(QLORA, [override])
    assert needle in str(err.value), str(err.value)


def test_expert_alpha_must_be_whole_when_derived():
    with pytest.raises(RecipeError, match=r"expert_r 3 \* alpha 100 / r 64 is not a whole number: set expert_alpha"):
        load_recipe(QLORA, ["lora.alpha=100", "lora.expert_r=3", "lora.expert_alpha=null"])
    assert load_recipe(QLORA, ["lora.alpha=100", "lora.expert_r=3", "lora.expert_alpha=5"]).lora.expert_lora_alpha == 5


def test_expert_rank_defaults_and_alpha():
    lora = load_recipe(QLORA, ["lora.expert_r=null", "lora.expert_alpha=null"]).lora
    assert (lora.expert_rank, lora.expert_lora_alpha, lora.separate_expert_rank) == (64, 128, False)
    assert lora.rank_pattern() == {} and lora.alpha_pattern() == {}
    lora = load_recipe(QLORA, ["lora.expert_r=2", "lora.expert_alpha=null"]).lora
    assert (lora.expert_rank, lora.expert_lora_alpha) == (2, 4)  # alpha / r kept at 2
    assert lora.rank_pattern() == {"mlp.experts.gate_up_proj": 2, "mlp.experts.down_proj": 2}
    lora = load_recipe(QLORA, ["lora.expert_r=2", "lora.expert_alpha=16"]).lora
    assert lora.alpha_pattern() == {"mlp.experts.gate_up_proj": 16, "mlp.experts.down_proj": 16}
    # The same rank and alpha as the attention is no separate rank: nothing extra is rendered.
    assert not load_recipe(QLORA, ["lora.expert_r=64", "lora.expert_alpha=128"]).lora.separate_expert_rank


def test_tool_config_passthrough_accepts_a_real_key(tmp_path):
    r = load_recipe(QLORA, [f"output_dir={tmp_path}", "tool_config.neftune_noise_alpha=5"])
    assert render_tool_config(r, tmp_path).config["neftune_noise_alpha"] == 5
    with pytest.raises(RecipeError, match="unknown swift key"):
        load_recipe(ROOT / "recipes/train/swift-qlora-r64.yaml", ["tool_config.neftune_noise_alpa=5"])
    # axolotl's Triton LoRA kernels are set by the recipe only on CPU (off); on a GPU they are free to set.
    r = load_recipe(QLORA, ["tool_config.lora_qkv_kernel=true"])
    assert render_tool_config(r, tmp_path).config["lora_qkv_kernel"] is True
    with pytest.raises(RecipeError, match="lora_qkv_kernel already set"):
        load_recipe(ROOT / "recipes/train/axolotl-cpu-smoke.yaml", ["tool_config.lora_qkv_kernel=true"])


def test_key_lists_are_real_tool_keys():
    ax, sw = tool_keys("axolotl"), tool_keys("swift")
    assert {"lora_target_parameters", "quantize_moe_experts", "chat_template_jinja", "eot_tokens"} <= ax
    assert {"lora_rank_pattern", "lora_alpha_pattern"} <= ax
    assert {"target_parameters", "tuner_type", "loss_scale", "template", "check_model", "external_plugins"} <= sw
    assert "tuner_type" not in ax and "quantize_moe_experts" not in sw
    assert "lora_rank_pattern" not in sw  # swift has one lora_rank: the expert rank needs the plugin tuner


def test_managed_keys_are_tool_keys():
    for tool in ("axolotl", "swift"):
        for device in ("cuda", "cpu"):
            for template in ("qwen3_instruct_2507", "tokenizer_default"):
                assert managed_keys(tool, device=device, chat_template=template) <= tool_keys(tool)


def test_recipe_module_does_not_import_the_renderer():
    """The dependency is one-way: render imports recipe, never the other way round."""
    tree = ast.parse((ROOT / "novelcraft/train/recipe.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "render" not in imported and not any(m and m.endswith(".render") for m in imported), imported
    common = ast.parse((ROOT / "novelcraft/train/common.py").read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(common) if isinstance(n, ast.ImportFrom) and n.level > 0]

"""Render a :class:`TrainRecipe` into the native configuration of Axolotl or MS-SWIFT (pure functions).

The rendered file is what the tool itself reads, so a user can also run it with the plain tool CLI
(``axolotl train axolotl.yaml`` / ``swift sft --config swift.yaml``). Paths in it are absolute.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..chat_format import instruct_2507_template
from .common import (
    END_OF_TURN,
    SWIFT_EXPERT_RANK_TUNER,
    SWIFT_INSTRUCT_TEMPLATE,
    resource_file,
)
from .recipe import TrainRecipe

#: The swift plugin that gives target parameters their own rank (rendered into the run dir).
SWIFT_PATTERN_PLUGIN = "swift_lora_patterns.py"

__all__ = ["RenderedConfig", "render_axolotl", "render_swift", "render_tool_config", "steps_per_epoch"]


@dataclass
class RenderedConfig:
    """A native tool configuration plus the side files it refers to (name -> text, in the run dir)."""

    tool: str
    filename: str
    config: dict[str, Any]
    side_files: dict[str, str] = field(default_factory=dict)

    def text(self, command: str) -> str:
        """The config as YAML, headed by the command that runs it."""
        head = f"# Rendered by novelcraft from a kind: train recipe. Run it with:\n#   {command}\n"
        return head + yaml.safe_dump(self.config, sort_keys=False, allow_unicode=True, width=120)


def swift_pattern_plugin(rank_pattern: dict[str, int], alpha_pattern: dict[str, int]) -> str:
    """The shipped swift plugin with the given PEFT rank/alpha patterns filled in."""
    text = resource_file(SWIFT_PATTERN_PLUGIN).read_text(encoding="utf-8")
    filled = text.replace(
        "RANK_PATTERN: dict = {}  # filled in when rendered", f"RANK_PATTERN: dict = {rank_pattern!r}"
    )
    filled = filled.replace(
        "ALPHA_PATTERN: dict = {}  # filled in when rendered", f"ALPHA_PATTERN: dict = {alpha_pattern!r}"
    )
    if "# filled in when rendered" in filled:  # the shipped file lost its placeholders
        raise RuntimeError(f"{SWIFT_PATTERN_PLUGIN}: pattern placeholders not replaced")
    return filled


def _abs(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def steps_per_epoch(recipe: TrainRecipe, n_train: int | None) -> int | None:
    """Optimizer steps in one epoch over ``n_train`` records (None when the count is unknown)."""
    if not n_train:
        return None
    per_step = recipe.training.micro_batch_size * recipe.training.gradient_accumulation_steps
    return max(1, math.ceil(n_train / (per_step * recipe.distributed.num_gpus)))


def _zero3_config(bf16: bool) -> dict[str, Any]:
    return {
        "zero_optimization": {
            "stage": 3,
            "overlap_comm": True,
            "contiguous_gradients": True,
            "sub_group_size": 0,
            "reduce_bucket_size": "auto",
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "stage3_max_live_parameters": 0,
            "stage3_max_reuse_distance": 0,
            "stage3_gather_16bit_weights_on_model_save": True,
        },
        "bf16": {"enabled": bf16},
        "fp16": {"enabled": False},
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "wall_clock_breakdown": False,
    }


def render_axolotl(recipe: TrainRecipe, run_dir: str | Path) -> RenderedConfig:
    """The Axolotl YAML of ``recipe`` (keys of axolotl's ``AxolotlInputConfig``)."""
    run_dir = Path(run_dir)
    t = recipe.training
    bf16 = t.precision == "bf16"
    ds_common = {
        "ds_type": "json",
        "type": "chat_template",
        "field_messages": "messages",
        "message_property_mappings": {"role": "role", "content": "content"},
        # Loss on the assistant turn only, including its end-of-turn token.
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
    }
    cfg: dict[str, Any] = {"base_model": recipe.base_model}
    if recipe.quantization == "nf4":
        cfg.update(adapter="qlora", load_in_4bit=True)
        if recipe.quantize_moe_experts:
            cfg["quantize_moe_experts"] = True
    else:
        cfg["adapter"] = "lora"
    cfg.update(
        lora_r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        lora_target_modules=list(recipe.lora.target_modules),
    )
    if recipe.lora.target_parameters:
        cfg["lora_target_parameters"] = list(recipe.lora.target_parameters)
    if recipe.lora.separate_expert_rank:
        # axolotl forwards these to PEFT LoraConfig.rank_pattern / alpha_pattern.
        cfg.update(lora_rank_pattern=recipe.lora.rank_pattern(), lora_alpha_pattern=recipe.lora.alpha_pattern())
    if recipe.chat_template == "qwen3_instruct_2507":
        cfg.update(chat_template="jinja", chat_template_jinja=instruct_2507_template())
    else:
        cfg["chat_template"] = "tokenizer_default"
    cfg["eot_tokens"] = [END_OF_TURN]
    cfg["datasets"] = [{"path": _abs(recipe.data.train), **ds_common}]
    if recipe.data.validation:
        cfg["test_datasets"] = [{"path": _abs(recipe.data.validation), "split": "train", **ds_common}]
    else:
        cfg["val_set_size"] = 0.0
    cfg.update(
        dataset_prepared_path=_abs(run_dir / "prepared"),
        output_dir=_abs(run_dir / "output"),
        sequence_len=recipe.data.sequence_len,
        sample_packing=recipe.data.sample_packing,
        num_epochs=t.epochs,
    )
    if t.max_steps is not None:
        cfg["max_steps"] = t.max_steps
    cfg.update(
        micro_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        lr_scheduler=t.lr_scheduler,
        warmup_ratio=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optimizer=t.optimizer,
    )
    if recipe.data.validation:
        if t.eval_steps:
            cfg["eval_steps"] = t.eval_steps
        else:
            cfg["evals_per_epoch"] = t.evals_per_epoch
    cfg.update(
        saves_per_epoch=t.saves_per_epoch,
        logging_steps=t.logging_steps,
        gradient_checkpointing=t.gradient_checkpointing,
        bf16=bf16,
        fp16=False,
        tf32=False,
        seed=t.seed,
    )
    side: dict[str, str] = {}
    if recipe.device == "cuda":
        cfg["sdp_attention"] = True
    else:
        # axolotl's fused LoRA kernels are Triton (CUDA) code.
        cfg.update(lora_qkv_kernel=False, lora_o_kernel=False, lora_mlp_kernel=False)
    if recipe.distributed.strategy == "deepspeed_zero3":
        side["deepspeed_zero3.json"] = json.dumps(_zero3_config(bf16), indent=2) + "\n"
        cfg["deepspeed"] = _abs(run_dir / "deepspeed_zero3.json")
    elif recipe.distributed.strategy == "fsdp":
        cfg["fsdp_version"] = 2
        cfg["fsdp_config"] = {
            "offload_params": False,
            "cpu_ram_efficient_loading": True,
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "transformer_layer_cls_to_wrap": "Qwen3MoeDecoderLayer",
            "state_dict_type": "SHARDED_STATE_DICT",
            "reshard_after_forward": True,
            "activation_checkpointing": t.gradient_checkpointing,
        }
        # FSDP2 checkpoints activations itself; the trainer flag would do it twice.
        cfg["gradient_checkpointing"] = False
    cfg.update(recipe.tool_config)
    return RenderedConfig("axolotl", "axolotl.yaml", cfg, side)


def render_swift(recipe: TrainRecipe, run_dir: str | Path, n_train: int | None = None) -> RenderedConfig:
    """The MS-SWIFT ``swift sft`` YAML of ``recipe`` (keys of swift's ``SftArguments``)."""
    run_dir = Path(run_dir)
    t = recipe.training
    bf16 = t.precision == "bf16"
    dtype = "bfloat16" if bf16 else "float32"
    cfg: dict[str, Any] = {"model": recipe.base_model}
    if recipe.model_type:
        cfg["model_type"] = recipe.model_type
    if recipe.chat_template == "qwen3_instruct_2507":
        cfg["template"] = SWIFT_INSTRUCT_TEMPLATE
    side: dict[str, str] = {}
    if recipe.lora.separate_expert_rank:
        # swift sft has one lora_rank for all targets: a plugin tuner adds PEFT's rank/alpha patterns.
        side[SWIFT_PATTERN_PLUGIN] = swift_pattern_plugin(recipe.lora.rank_pattern(), recipe.lora.alpha_pattern())
        cfg.update(
            torch_dtype=dtype,
            tuner_type=SWIFT_EXPERT_RANK_TUNER,
            external_plugins=[_abs(run_dir / SWIFT_PATTERN_PLUGIN)],
        )
    else:
        cfg.update(torch_dtype=dtype, tuner_type="lora")
    if recipe.quantization == "nf4":
        cfg.update(
            quant_method="bnb",
            quant_bits=4,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
        )
    cfg.update(
        lora_rank=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=list(recipe.lora.target_modules),
    )
    if recipe.lora.target_parameters:
        cfg["target_parameters"] = list(recipe.lora.target_parameters)
    cfg["dataset"] = [_abs(recipe.data.train)]
    if recipe.data.validation:
        cfg["val_dataset"] = [_abs(recipe.data.validation)]
    # No hidden split of train.jsonl: validation comes only from validation.jsonl.
    cfg["split_dataset_ratio"] = 0.0
    cfg.update(
        # Loss on assistant turns only (system and user tokens are masked).
        loss_scale="default",
        max_length=recipe.data.sequence_len,
        truncation_strategy="delete",
        output_dir=_abs(run_dir / "output"),
        add_version=False,
        num_train_epochs=t.epochs,
    )
    if t.max_steps is not None:
        cfg["max_steps"] = t.max_steps
    spe = steps_per_epoch(recipe, n_train)
    total = t.max_steps or (spe * t.epochs if spe else None)
    cfg.update(
        per_device_train_batch_size=t.micro_batch_size,
        per_device_eval_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_ratio=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optimizer,
    )
    if recipe.data.validation:
        if t.eval_steps:
            cfg.update(eval_strategy="steps", eval_steps=t.eval_steps)
        elif spe:
            eval_steps = max(1, spe // t.evals_per_epoch)
            cfg.update(eval_strategy="steps", eval_steps=min(eval_steps, total or eval_steps))
        else:
            cfg["eval_strategy"] = "epoch"
    else:
        cfg["eval_strategy"] = "no"
    if spe:
        save_steps = max(1, spe // t.saves_per_epoch)
        cfg.update(save_strategy="steps", save_steps=min(save_steps, total or save_steps))
    else:
        cfg["save_strategy"] = "epoch"
    cfg.update(
        logging_steps=t.logging_steps,
        gradient_checkpointing=t.gradient_checkpointing,
        seed=t.seed,
        # The base model is given explicitly; the check would query the ModelScope hub.
        check_model=False,
        report_to=["tensorboard"],
        dataloader_num_workers=0,
        dataset_num_proc=1,
    )
    if recipe.distributed.strategy == "deepspeed_zero3":
        cfg["deepspeed"] = "zero3"
    elif recipe.distributed.strategy == "fsdp":
        cfg["fsdp"] = "fsdp2"
        cfg["gradient_checkpointing"] = False
    cfg.update(recipe.tool_config)
    return RenderedConfig("swift", "swift.yaml", cfg, side)


def render_tool_config(recipe: TrainRecipe, run_dir: str | Path, n_train: int | None = None) -> RenderedConfig:
    """The native config of ``recipe.tool`` for a run in ``run_dir`` (``n_train``: train records, for
    tools that count evaluation steps rather than evaluations per epoch)."""
    if recipe.tool == "axolotl":
        return render_axolotl(recipe, run_dir)
    return render_swift(recipe, run_dir, n_train)

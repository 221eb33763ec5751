"""Names shared by the train recipe, its rendering and the estimate: tools, targets, shipped files.

This module imports nothing else of :mod:`novelcraft.train`, so the recipe schema, the renderers and the
estimate all depend on it and never on each other's internals.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

#: the trainers a train recipe can launch (each in its own virtualenv)
TOOLS: tuple[str, ...] = ("axolotl", "swift")

#: The fused expert weights of Qwen3-MoE in transformers 5 (3-D parameters, not nn.Linear modules).
QWEN3_MOE_EXPERT_PARAMETERS = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
ATTENTION_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
#: Module names that would wrap the MoE router (``mlp.gate``); the router stays frozen.
ROUTER_TARGETS = {"gate", "mlp.gate", "router", "all-linear"}

#: MS-SWIFT's template for the same format (``qwen3`` would add empty think blocks).
SWIFT_INSTRUCT_TEMPLATE = "qwen3_nothinking"
END_OF_TURN = "<|im_end|>"

#: swift ``tuner_type`` registered by the shipped plugin that gives target_parameters their own rank.
SWIFT_EXPERT_RANK_TUNER = "novelcraft_lora"


def resource_file(name: str) -> Path:
    """A file shipped in ``novelcraft/resources/train`` (a real path: some run in other interpreters)."""
    return Path(__file__).resolve().parents[1] / "resources" / "train" / name


@lru_cache(maxsize=4)
def tool_keys(tool: str) -> frozenset[str]:
    """Top-level configuration keys the installed version of ``tool`` accepts (shipped allow-list)."""
    text = resource_file(f"{tool}_keys.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


# Native keys the renderers write from the recipe's typed fields. A ``tool_config`` passthrough may not
# set any of them: each setting has exactly one place. The test suite renders every combination of
# recipe options and checks that these sets are exactly the keys the renderers can write.
_AXOLOTL_MANAGED = frozenset(
    {
        "base_model", "adapter", "load_in_4bit", "quantize_moe_experts",
        "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_target_parameters",
        "lora_rank_pattern", "lora_alpha_pattern",
        "chat_template", "eot_tokens",
        "datasets", "test_datasets", "val_set_size", "dataset_prepared_path", "output_dir",
        "sequence_len", "sample_packing", "num_epochs", "max_steps",
        "micro_batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler", "warmup_ratio",
        "weight_decay", "max_grad_norm", "optimizer", "eval_steps", "evals_per_epoch", "saves_per_epoch",
        "logging_steps", "gradient_checkpointing", "bf16", "fp16", "tf32", "seed",
        "deepspeed", "fsdp_version", "fsdp_config",
    }
)  # fmt: skip
_SWIFT_MANAGED = frozenset(
    {
        "model", "model_type", "torch_dtype", "tuner_type", "external_plugins",
        "quant_method", "quant_bits", "bnb_4bit_quant_type", "bnb_4bit_compute_dtype", "bnb_4bit_use_double_quant",
        "lora_rank", "lora_alpha", "lora_dropout", "target_modules", "target_parameters",
        "dataset", "val_dataset", "split_dataset_ratio", "loss_scale", "max_length", "truncation_strategy",
        "output_dir", "add_version", "num_train_epochs", "max_steps",
        "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
        "learning_rate", "lr_scheduler_type", "warmup_ratio", "weight_decay", "max_grad_norm", "optim",
        "eval_strategy", "eval_steps", "save_strategy", "save_steps", "logging_steps", "gradient_checkpointing",
        "seed", "check_model", "report_to", "dataloader_num_workers", "dataset_num_proc", "deepspeed", "fsdp",
    }
)  # fmt: skip


def managed_keys(tool: str, *, device: str, chat_template: str) -> frozenset[str]:
    """Native keys of ``tool`` that the recipe's own fields set for a recipe on ``device`` with
    ``chat_template``; ``tool_config`` may not set them."""
    if tool == "axolotl":
        # CUDA runs get SDPA attention; CPU runs switch axolotl's Triton LoRA kernels off. On the other
        # device those keys are free for tool_config (e.g. lora_qkv_kernel: true on a GPU).
        extra = {"sdp_attention"} if device == "cuda" else {"lora_qkv_kernel", "lora_o_kernel", "lora_mlp_kernel"}
        if chat_template == "qwen3_instruct_2507":
            extra.add("chat_template_jinja")
        return _AXOLOTL_MANAGED | extra
    # swift's template is only chosen by the recipe for the Instruct-2507 format.
    return _SWIFT_MANAGED | ({"template"} if chat_template == "qwen3_instruct_2507" else set())

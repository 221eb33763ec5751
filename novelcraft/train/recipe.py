"""The ``kind: train`` recipe: one strict schema for QLoRA/LoRA runs with Axolotl or MS-SWIFT.

The recipe holds the settings that matter for Qwen3-MoE fine-tuning as typed fields (data, model,
LoRA, quantization, schedule, distribution) and a ``tool_config`` passthrough for any other native key
of the chosen tool. Passthrough keys are checked against an allow-list of the tool's own configuration
keys (shipped in ``novelcraft/resources/train/<tool>_keys.txt`` and compared with the installed tool by
the test suite), because Axolotl silently drops keys it does not know. A passthrough key may not set
something a typed field already controls: each setting has exactly one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..chat_format import ChatTemplateName
from ..recipes import RECIPE_VERSION, Strict
from .common import (
    ATTENTION_MODULES,
    QWEN3_MOE_EXPERT_PARAMETERS,
    ROUTER_TARGETS,
    TOOLS,
    managed_keys,
    tool_keys,
)

Tool = Literal["axolotl", "swift"]

__all__ = ["ATTENTION_MODULES", "QWEN3_MOE_EXPERT_PARAMETERS", "TOOLS", "TrainRecipe", "tool_keys"]


class TrainData(Strict):
    """The compiled data set (``novelcraft compile``): JSONL of {"messages": [system, user, assistant]}."""

    train: str = Field(..., description="train.jsonl (paths are relative to the working directory)")
    validation: str | None = Field(None, description="validation.jsonl; evaluated during training when set")
    sequence_len: int = Field(4096, ge=128, description="longest sample in tokens; longer ones are dropped")
    sample_packing: bool = Field(False, description="pack several samples per sequence (axolotl only)")


class LoraSettings(Strict):
    """LoRA adapter. Experts are fused 3-D parameters in transformers 5 and take ``target_parameters``.

    PEFT gives every expert its own A/B pair, so an expert rank costs ``num_experts`` times what the same
    rank costs on one matrix; ``expert_r`` / ``expert_alpha`` set it apart from the attention's ``r`` /
    ``alpha`` (rendered as PEFT ``rank_pattern`` / ``alpha_pattern`` on the target parameters).
    """

    r: int = Field(64, ge=1, description="rank of target_modules (attention)")
    alpha: int = Field(128, ge=1)
    expert_r: int | None = Field(
        None, ge=1, description="rank of each expert's adapter (target_parameters); default: r"
    )
    expert_alpha: int | None = Field(
        None, ge=1, description="alpha of the expert adapters; default: expert_r * alpha / r (the attention's scaling)"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="must be 0 with target_parameters (PEFT)")
    target_modules: list[str] = Field(default_factory=lambda: list(ATTENTION_MODULES))
    target_parameters: list[str] = Field(
        default_factory=lambda: list(QWEN3_MOE_EXPERT_PARAMETERS),
        description="3-D parameters to adapt, e.g. the fused experts; [] for attention-only LoRA",
    )

    @field_validator("target_modules")
    @classmethod
    def _router_frozen(cls, value: list[str]) -> list[str]:
        bad = sorted(set(value) & ROUTER_TARGETS)
        if bad:
            raise ValueError(
                f"{', '.join(bad)} would put LoRA on the MoE router (mlp.gate); list the projections instead"
            )
        return value

    @model_validator(mode="after")
    def _dropout_with_parameters(self) -> LoraSettings:
        if self.target_parameters and self.dropout != 0.0:
            raise ValueError("dropout must be 0 when target_parameters is set (PEFT cannot drop out 3-D weights)")
        if not self.target_modules and not self.target_parameters:
            raise ValueError("target_modules and target_parameters are both empty: nothing to train")
        if (self.expert_r or self.expert_alpha) and not self.target_parameters:
            raise ValueError("expert_r / expert_alpha need target_parameters (the experts to adapt)")
        if self.expert_alpha is None and self.expert_r is not None and (self.expert_r * self.alpha) % self.r:
            raise ValueError(
                f"expert_r {self.expert_r} * alpha {self.alpha} / r {self.r} is not a whole number: set expert_alpha"
            )
        return self

    @property
    def expert_rank(self) -> int:
        """Rank of each expert adapter."""
        return self.expert_r or self.r

    @property
    def expert_lora_alpha(self) -> int:
        """Alpha of the expert adapters (keeps the attention's alpha / r unless set)."""
        if self.expert_alpha is not None:
            return self.expert_alpha
        return self.expert_rank * self.alpha // self.r

    @property
    def separate_expert_rank(self) -> bool:
        """True when the experts' rank or alpha differ from the attention's (rendered as patterns)."""
        return bool(self.target_parameters) and (self.expert_rank, self.expert_lora_alpha) != (self.r, self.alpha)

    def rank_pattern(self) -> dict[str, int]:
        """PEFT ``rank_pattern``: each target parameter's name (matched as a suffix of the full parameter
        name, e.g. ``model.layers.0.mlp.experts.gate_up_proj``) to the expert rank; empty when not separate."""
        return {p: self.expert_rank for p in self.target_parameters} if self.separate_expert_rank else {}

    def alpha_pattern(self) -> dict[str, int]:
        """PEFT ``alpha_pattern`` matching :meth:`rank_pattern`."""
        return {p: self.expert_lora_alpha for p in self.target_parameters} if self.separate_expert_rank else {}


class TrainingSettings(Strict):
    """Optimisation schedule. ``epochs`` counts passes over train.jsonl; ``max_steps`` caps them."""

    epochs: int = Field(3, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    micro_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(8, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    optimizer: str = Field("adamw_torch", description="transformers optimizer name, e.g. paged_adamw_8bit")
    evals_per_epoch: int = Field(4, ge=1, description="validation-loss evaluations per epoch")
    eval_steps: int | None = Field(None, ge=1, description="evaluate every N steps instead (short runs)")
    saves_per_epoch: int = Field(1, ge=1)
    logging_steps: int = Field(1, ge=1)
    gradient_checkpointing: bool = True
    precision: Literal["bf16", "fp32"] = "bf16"
    seed: int = 42


class Distributed(Strict):
    """Several GPUs on one node: FSDP (axolotl: FSDP2) or DeepSpeed ZeRO-3."""

    strategy: Literal["none", "fsdp", "deepspeed_zero3"] = "none"
    num_gpus: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Distributed:
        if self.strategy == "none" and self.num_gpus != 1:
            raise ValueError("num_gpus > 1 needs strategy fsdp or deepspeed_zero3")
        if self.strategy != "none" and self.num_gpus < 2:
            raise ValueError(f"strategy {self.strategy} needs num_gpus >= 2")
        return self


class EstimateSettings(Strict):
    """Assumptions of ``novelcraft train --estimate`` that no model config holds (all are stated in its output)."""

    tokens_per_second: tuple[float, float] | None = Field(
        None,
        description="training throughput of one device in tokens/s, low and high (e.g. a measured one); "
        "default: derived from gpu_tflops and mfu",
    )
    gpu_tflops: float = Field(989.0, gt=0, description="dense bf16 peak of one GPU in TFLOP/s (H100/H200 SXM: 989)")
    mfu: tuple[float, float] = Field(
        (0.03, 0.15), description="assumed model FLOP utilisation, low and high (not measured)"
    )
    gpu_memory_gib: float = Field(80.0, gt=0, description="memory of one device in GiB: the recipe fits or not")

    @model_validator(mode="after")
    def _ranges(self) -> EstimateSettings:
        for name in ("tokens_per_second", "mfu"):
            value = getattr(self, name)
            if value is not None and not 0 < value[0] <= value[1]:
                raise ValueError(f"{name} must be [low, high] with 0 < low <= high, got {list(value)}")
        if self.mfu[1] > 1:
            raise ValueError("mfu is a fraction of the peak (at most 1)")
        return self


class TrainRecipe(Strict):
    """Recipe of ``novelcraft train``: a LoRA/QLoRA fine-tune of a chat model on a compiled data set.

    The run directory ``OUTPUT_DIR/NAME`` receives the resolved recipe, the rendered native config of
    the tool (``axolotl.yaml`` or ``swift.yaml``, runnable with the plain tool CLI), the tool's log and
    the adapter under ``output/``.
    """

    version: Literal[1] = RECIPE_VERSION
    kind: Literal["train"] = "train"
    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    tool: Tool
    output_dir: str = Field("runs", description="runs are written to OUTPUT_DIR/NAME")
    base_model: str = Field("Qwen/Qwen3-30B-A3B-Instruct-2507", description="hub id or local folder")
    model_type: str | None = Field(
        "qwen3_moe", description="swift --model_type (so swift needs no hub look-up); ignored by axolotl"
    )
    chat_template: ChatTemplateName = Field(
        "qwen3_instruct_2507",
        description="qwen3_instruct_2507: plain ChatML without think blocks (axolotl: the shipped jinja, "
        "swift: qwen3_nothinking); tokenizer_default: the template stored with the model's tokenizer",
    )
    device: Literal["cuda", "cpu"] = "cuda"
    data: TrainData
    quantization: Literal["nf4", "none"] = Field("nf4", description="nf4 = QLoRA (bitsandbytes 4-bit base)")
    quantize_moe_experts: bool = Field(
        True, description="axolotl: quantize the fused expert weights to 4 bit too (CUDA only)"
    )
    lora: LoraSettings = LoraSettings()
    training: TrainingSettings = TrainingSettings()
    distributed: Distributed = Distributed()
    estimate: EstimateSettings = EstimateSettings()
    tool_config: dict[str, Any] = Field(
        default_factory=dict, description="extra native keys of the tool, checked against its key list"
    )
    toolenv: str | None = Field(
        None, description="the tool's virtualenv; default: the one scripts/toolenv.sh made (or $NOVELCRAFT_<TOOL>_VENV)"
    )

    @property
    def run_dir(self) -> Path:
        """``output_dir/name``: where the run's config, logs and adapter go."""
        return Path(self.output_dir) / self.name

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainRecipe:
        if self.quantize_moe_experts:
            if self.tool != "axolotl":
                raise ValueError("quantize_moe_experts is an axolotl option; set it to false for swift")
            if self.quantization != "nf4":
                raise ValueError("quantize_moe_experts needs quantization: nf4")
            if self.device != "cuda":
                raise ValueError("quantize_moe_experts needs CUDA; set it to false for device: cpu")
        if self.device == "cpu":
            if self.training.precision != "fp32":
                raise ValueError("device cpu trains in fp32: set training.precision: fp32")
            if self.distributed.strategy != "none":
                raise ValueError("distributed training needs device: cuda")
        if self.distributed.strategy != "none" and self.quantization == "nf4":
            raise ValueError(
                "multi-GPU recipes shard a bf16 base (quantization: none); 4-bit bases with "
                f"{self.distributed.strategy} are not supported here"
            )
        if self.data.sample_packing and self.tool == "swift":
            raise ValueError("data.sample_packing is an axolotl option; use tool_config.packing for swift")
        self._check_tool_config()
        return self

    def _check_tool_config(self) -> None:
        known = tool_keys(self.tool)
        unknown = sorted(k for k in self.tool_config if k not in known)
        if unknown:
            raise ValueError(
                f"tool_config: unknown {self.tool} key(s) {', '.join(unknown)} (misspelled? see "
                f"novelcraft/resources/train/{self.tool}_keys.txt)"
            )
        managed = managed_keys(self.tool, device=self.device, chat_template=self.chat_template)
        clash = sorted(k for k in self.tool_config if k in managed)
        if clash:
            raise ValueError(f"tool_config: {', '.join(clash)} already set by the recipe's own fields; set it there")

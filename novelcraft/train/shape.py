"""A model's parameters by group, from its config alone: a meta-device build through transformers.

``AutoModelForCausalLM.from_config`` inside ``torch.device("meta")`` allocates no weights, so even a
30B-parameter MoE is counted in a few seconds on a laptop. The result, :class:`ModelShape`, is a plain
record: the estimate (:mod:`novelcraft.train.estimate`) is arithmetic on it and never touches torch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..errors import NovelcraftError, setup_hint
from .common import resource_file

log = logging.getLogger(__name__)

#: Parameter groups, in the order they are printed.
GROUPS = ("embedding", "lm_head", "attention", "experts", "router", "dense_mlp", "norms", "other")


class ShapeError(NovelcraftError):
    """No config for the base model, or transformers cannot build it."""


class TensorShape(BaseModel):
    """A weight a LoRA target can name: an ``nn.Linear`` (``kind: linear``, shape ``[out, in]``) or a
    parameter of 3 dimensions (``kind: param3d``, ``[experts, d1, d2]``)."""

    name: str
    kind: str
    shape: list[int]


class ModelShape(BaseModel):
    """Sizes of a causal LM that the memory estimate needs (from ``config.json`` and a meta build)."""

    model_type: str
    architecture: str
    num_layers: int
    hidden_size: int
    vocab_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int = Field(0, description="dense MLP width (0: every layer is MoE)")
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    moe_layers: int = Field(0, description="layers with a routed-expert MLP")
    tie_word_embeddings: bool = False
    params: dict[str, int] = Field(description="parameters by group (see GROUPS)")
    total: int
    active: int = Field(description="parameters one token passes through (all but the unrouted experts)")
    tensors: list[TensorShape] = Field(default_factory=list, description="linear and 3-D weights, by full name")

    def group(self, name: str) -> int:
        """Parameters of the group ``name`` (0 when the model has none)."""
        return self.params.get(name, 0)


def _group_of(name: str) -> str:
    if "embed_tokens" in name or name.endswith("wte.weight"):
        return "embedding"
    if name.startswith("lm_head"):
        return "lm_head"
    if "norm" in name.rsplit(".", 2)[-2]:
        return "norms"
    if ".self_attn." in name or ".attention." in name:
        return "attention"
    if ".experts." in name:
        return "experts"
    if ".mlp.gate." in name or ".router." in name:
        return "router"
    if ".mlp." in name:
        return "dense_mlp"
    return "other"


def config_source(base_model: str) -> Path | None:
    """Where the ``config.json`` of ``base_model`` comes from: a local folder, the published configs
    shipped in ``novelcraft/resources/train/configs``, or the local Hugging Face cache (no download)."""
    local = Path(base_model).expanduser() / "config.json"
    if local.is_file():
        return local
    shipped = resource_file(f"configs/{base_model.replace('/', '--')}.json")
    if shipped.is_file():
        return shipped
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(base_model, "config.json")
    return Path(cached) if isinstance(cached, str) else None


def load_model_config(base_model: str) -> tuple[dict[str, Any], Path]:
    """The config mapping of ``base_model`` and the file it was read from (see :func:`config_source`)."""
    source = config_source(base_model)
    if source is None:
        raise ShapeError(
            f"no config.json for {base_model}: give a local model folder as base_model, or put the model's "
            "config in the Hugging Face cache",
            step="estimate",
        )
    try:
        return json.loads(source.read_text(encoding="utf-8")), source
    except (OSError, json.JSONDecodeError) as exc:
        raise ShapeError(f"cannot read model config ({exc})", path=source, step="estimate") from None


def _config_int(cfg: Any, *names: str, default: int = 0) -> int:
    for name in names:
        value = getattr(cfg, name, None)
        if isinstance(value, int):
            return value
    return default


def model_shape(config: dict[str, Any]) -> ModelShape:
    """Build the model of ``config`` on the meta device (no weights) and count its parameters by group.

    Needs torch and transformers (``bash scripts/setup.sh dev,llm``, or run inside a tool venv).

    >>> shape = model_shape(load_model_config("Qwen/Qwen3-30B-A3B-Instruct-2507")[0])
    >>> shape.total, shape.group("experts")
    """
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM
    except ImportError as exc:
        raise ShapeError(
            f"counting parameters needs torch and transformers ({exc}); {setup_hint('dev,llm')}",
            step="estimate",
        ) from None
    data = {k: v for k, v in config.items() if k not in ("quantization_config", "auto_map")}
    model_type = data.pop("model_type", None)
    if not model_type:
        raise ShapeError("model config has no model_type", step="estimate")
    try:
        cfg = AutoConfig.for_model(model_type, **data)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ShapeError(f"transformers cannot build a {model_type} model: {exc}", step="estimate") from None

    params = {g: 0 for g in GROUPS}
    tensors: list[TensorShape] = []
    expert_params = 0
    for name, param in model.named_parameters():  # tied weights are listed once
        params[_group_of(name)] += param.numel()
        if param.dim() == 3:
            tensors.append(TensorShape(name=name, kind="param3d", shape=list(param.shape)))
        if ".experts." in name:
            expert_params += param.numel()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            tensors.append(TensorShape(name=name, kind="linear", shape=[module.out_features, module.in_features]))

    text_cfg = getattr(cfg, "text_config", None) or cfg
    num_experts = _config_int(text_cfg, "num_experts", "num_local_experts", "n_routed_experts")
    top_k = _config_int(text_cfg, "num_experts_per_tok", "num_experts_per_token")
    heads = _config_int(text_cfg, "num_attention_heads")
    hidden = _config_int(text_cfg, "hidden_size")
    moe_layers = len({n.split(".experts.")[0] for n in (t.name for t in tensors) if ".experts." in n})
    total = sum(params.values())
    # A token passes top_k of num_experts experts in each MoE layer; everything else it passes fully.
    active = total - (expert_params - expert_params * top_k // num_experts if num_experts else 0)
    shape = ModelShape(
        model_type=model_type,
        architecture=type(model).__name__,
        num_layers=_config_int(text_cfg, "num_hidden_layers", "n_layer"),
        hidden_size=hidden,
        vocab_size=_config_int(text_cfg, "vocab_size"),
        num_heads=heads,
        num_kv_heads=_config_int(text_cfg, "num_key_value_heads", default=heads),
        head_dim=_config_int(text_cfg, "head_dim", default=hidden // max(heads, 1)),
        intermediate_size=_config_int(text_cfg, "intermediate_size"),
        num_experts=num_experts,
        experts_per_token=top_k,
        moe_intermediate_size=_config_int(text_cfg, "moe_intermediate_size"),
        moe_layers=moe_layers,
        tie_word_embeddings=bool(getattr(text_cfg, "tie_word_embeddings", False)),
        params=params,
        total=total,
        active=active,
        tensors=tensors,
    )
    log.info("%s: %d parameters (%d active), %d MoE layers", shape.architecture, total, active, moe_layers)
    return shape

"""Memory and time of a train recipe before launch, from the model's config alone (no weights).

Every figure is arithmetic on a :class:`~novelcraft.train.shape.ModelShape` (a meta-device build) and
the recipe; nothing here runs a model. Per device, the peak is the sum of

* **weights**: nn.Linear weights (lm_head excepted) in 4 bit with ``quantization: nf4``
  (bitsandbytes nf4 with double quantisation, 0.516 bytes/parameter); the fused 3-D experts in 4 bit
  only with axolotl's ``quantize_moe_experts`` (bitsandbytes leaves them in the compute dtype, and
  axolotl's ``prepare_model_for_kbit_training`` then upcasts them to fp32); every other weight
  (embeddings, lm_head, norms, router) in the compute dtype;
* **adapter, gradients, optimizer state**: PEFT keeps adapters in fp32 (4 + 4 bytes per parameter), the
  optimizer adds its state (AdamW 8, 8-bit AdamW 2 bytes per parameter);
* **activations** of one micro-batch: with gradient checkpointing one saved hidden state per layer,
  plus the larger of the loss peak and one layer's recomputed activations; without it every layer's
  activations and the loss peak together. The loss peak is three fp32 tensors of logits size (12 bytes
  per token and vocabulary entry): in backward the saved log-softmax, the gradient from the NLL loss
  and the log-softmax gradient (the trainer drops the logits themselves before backward; the forward,
  with the bf16 logits, their fp32 upcast and the log-softmax, peaks at 10). No fused cross-entropy;
* **expert stacks**: a LoRA on 3-D experts materialises the adapted weight of a whole expert stack at
  each forward (PEFT >= 0.21, axolotl's pin: one ``baddbmm``; PEFT 0.20, swift's pin: the delta and
  the sum), quantised experts are dequantised per forward, and the gradient of an adapted stack is as
  large; with checkpointing only one layer's copies are alive, without it every layer keeps its own;
* **runtime**: the CUDA context and allocator slack (a fixed 1 GiB plus 5 %); on CPU the resident
  memory of the tool's own process (measured, see ``CPU_RUNTIME_BYTES``).

ZeRO-3 and FSDP divide weights, adapter, gradients and optimizer state by the number of GPUs and add
two gathered layers. Time is tokens per epoch x epochs over a stated throughput (see
:class:`~novelcraft.train.recipe.EstimateSettings`); none of it is measured here.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field

from ..errors import NovelcraftError
from .datastats import DataStats
from .recipe import TrainRecipe
from .shape import ModelShape
from .timing import TimeEstimate, estimate_time

log = logging.getLogger(__name__)

GIB = 1024**3
#: bitsandbytes nf4 with double quantisation: 4-bit codes, an 8-bit absmax per 64 weights and an fp32
#: scale per 256 absmax blocks.
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
#: Optimizer state in bytes per trainable parameter, by transformers optimizer name.
OPTIMIZER_STATE_BYTES = {
    "adamw_torch": 8, "adamw_torch_fused": 8, "adamw_hf": 8, "adamw_apex_fused": 8, "adafactor": 0,
    "paged_adamw_32bit": 8, "adamw_8bit": 2, "adamw_bnb_8bit": 2, "paged_adamw_8bit": 2,
    "lion_32bit": 4, "lion_8bit": 1, "paged_lion_32bit": 4, "paged_lion_8bit": 1, "sgd": 0,
}  # fmt: skip
#: Full-size copies of an expert stack a LoRA on it materialises per forward, by the tool's PEFT pin.
EXPERT_LORA_COPIES = {"axolotl": 1, "swift": 2}
#: Loss peak per token and vocabulary entry: three fp32 tensors of logits size in backward.
LOSS_BYTES_PER_LOGIT = 12
#: CUDA context, cuBLAS workspace and allocator slack per GPU.
CUDA_RUNTIME_BYTES = 1 * GIB
CUDA_ALLOCATOR_SLACK = 0.05
#: Resident memory of the tool's training process besides its tensors (interpreter, torch, the tool's
#: imports), measured on CPU runs with 400-token records: see benchmarks/results/train_memory_cpu.md.
#: It moves from run to run and machine to machine (axolotl 993-1,202 MiB, swift 732-864 MiB in the
#: runs recorded there): these are the middles of those ranges.
CPU_RUNTIME_BYTES = {"axolotl": 1100 * 2**20, "swift": 800 * 2**20}


class AdapterTarget(BaseModel):
    """One entry of ``lora.target_modules`` / ``target_parameters`` and what it adds."""

    target: str
    kind: str = Field(description="module (nn.Linear) or parameter (3-D expert stack)")
    matches: int
    rank: int
    params: int
    input_features: int = Field(0, description="sum of in_features over the matched modules (activations)")


class MemoryItem(BaseModel):
    """One line of the memory estimate: what it holds and its bytes on one device."""

    name: str
    bytes: float
    note: str = ""


class TrainEstimate(BaseModel):
    """What ``novelcraft train RECIPE --estimate`` prints (see :func:`estimate_memory`)."""

    recipe: str
    tool: str
    base_model: str
    config_source: str
    shape: ModelShape
    adapter: list[AdapterTarget]
    adapter_params: int
    sequence_tokens: int = Field(description="tokens of the micro-batch the activations are sized for")
    sequence_basis: str
    memory: list[MemoryItem]
    total_bytes: float = Field(description="peak per device")
    device_memory_gib: float
    device: str = "cuda"
    devices: int
    strategy: str
    data: DataStats | None = None
    time: TimeEstimate | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def total_gib(self) -> float:
        """The estimated peak memory of one device, in GiB."""
        return self.total_bytes / GIB

    @property
    def fits(self) -> bool:
        """The estimate fits in the device's memory."""
        return self.total_bytes <= self.device_memory_gib * GIB

    def item(self, name: str) -> float:
        """Bytes of the memory lines called ``name``."""
        return sum(m.bytes for m in self.memory if m.name == name)


def _matches(name: str, target: str) -> bool:
    # PEFT's rule for list targets: the full name, or a suffix starting at a "." boundary.
    return name == target or name.endswith("." + target)


def adapter_targets(shape: ModelShape, recipe: TrainRecipe) -> list[AdapterTarget]:
    """Adapter parameters per LoRA target: r * (in + out) per nn.Linear, and one A/B pair per expert
    (experts * expert_r * (d1 + d2)) per 3-D parameter, as PEFT builds them."""
    lora = recipe.lora
    out = []
    for target in lora.target_modules:
        hits = [t for t in shape.tensors if t.kind == "linear" and _matches(t.name, target)]
        params = sum(lora.r * (t.shape[0] + t.shape[1]) for t in hits)
        inputs = sum(t.shape[1] for t in hits)
        out.append(
            AdapterTarget(
                target=target, kind="module", matches=len(hits), rank=lora.r, params=params, input_features=inputs
            )
        )
    for target in lora.target_parameters:
        hits = [t for t in shape.tensors if t.kind == "param3d" and _matches(t.name, target)]
        r = lora.expert_rank
        params = sum(t.shape[0] * r * (t.shape[1] + t.shape[2]) for t in hits)
        out.append(AdapterTarget(target=target, kind="parameter", matches=len(hits), rank=r, params=params))
    return out


def _layer_activation_bytes(shape: ModelShape, recipe: TrainRecipe, b: int, targets: list[AdapterTarget]) -> float:
    """Bytes saved for backward by one decoder layer, per token (see the module docstring)."""
    h, hd, nh, nkv = shape.hidden_size, shape.head_dim, shape.num_heads, shape.num_kv_heads
    norm = h * (4 + b)  # RMSNorm keeps its fp32 upcast and its output
    attn = norm + (nh + nkv) * hd * (4 + 4 * b) + nkv * hd * b + nh * hd * b + 4 * nh  # q/k norm + rope, v, out, lse
    # Each adapted module keeps its (cast) input for lora_A's gradient and lora_A's output for lora_B's.
    lora_in = sum((t.input_features + t.rank * t.matches) * b for t in targets if t.kind == "module")
    lora_in_per_layer = lora_in / max(shape.num_layers, 1)
    moe_frac = shape.moe_layers / max(shape.num_layers, 1)
    experts_lora = any(t.kind == "parameter" and t.matches for t in targets)
    mlp = float(norm)
    if shape.num_experts:
        i = shape.moe_intermediate_size
        per_expert = 3 * i + h + ((i + h) if experts_lora else 0)  # gate_up out, act, routed out (+ inputs)
        moe = 8 * shape.num_experts + shape.experts_per_token * per_expert * b
        mlp += moe_frac * moe + (1 - moe_frac) * 3 * shape.intermediate_size * b
    else:
        mlp += 3 * shape.intermediate_size * b
    return attn + lora_in_per_layer + mlp


def _expert_stack_bytes(
    shape: ModelShape, recipe: TrainRecipe, b: int, targets: list[AdapterTarget]
) -> tuple[float, float]:
    """(transient bytes of one MoE layer's expert copies, bytes such a layer keeps until backward)."""
    if not shape.moe_layers:
        return 0.0, 0.0
    stack = shape.group("experts") / shape.moe_layers * b  # one layer's experts in the compute dtype
    quantized = recipe.quantization == "nf4" and recipe.quantize_moe_experts
    lora = any(t.kind == "parameter" and t.matches for t in targets)
    forward = (1 if quantized else 0) + (EXPERT_LORA_COPIES.get(recipe.tool, 1) if lora else 0)
    transient = (forward + (1 if lora else 0)) * stack  # + the adapted stack's gradient in backward
    saved = stack if (lora or quantized) else 0.0  # F.linear keeps the (adapted / dequantised) stack
    return transient, saved


def estimate_memory(
    recipe: TrainRecipe,
    shape: ModelShape,
    *,
    data: DataStats | None = None,
    config_source: str = "",
    sequence_tokens: int | None = None,
) -> TrainEstimate:
    """Peak memory per device of ``recipe`` on a model of ``shape`` (pure arithmetic).

    The activations are sized for one micro-batch of ``sequence_tokens`` tokens per sample; default:
    ``data.sequence_len`` with sample packing, else the longest record that ``data`` trains on, else
    the recipe's ``data.sequence_len``.
    """
    t = recipe.training
    b = 2 if t.precision == "bf16" else 4
    n = recipe.distributed.num_gpus
    sharded = recipe.distributed.strategy != "none"
    shard = n if sharded else 1
    notes: list[str] = []

    if sequence_tokens is None:
        if recipe.data.sample_packing or data is None or not data.longest:
            sequence_tokens, basis = recipe.data.sequence_len, "data.sequence_len"
        else:
            sequence_tokens, basis = data.longest, f"the longest record of {data.path}"
    else:
        basis = "given"
    tokens = sequence_tokens * t.micro_batch_size

    targets = adapter_targets(shape, recipe)
    for tg in targets:
        if not tg.matches:
            notes.append(f"LoRA target {tg.target} matches nothing in {shape.architecture}: PEFT will refuse it")
    adapter = sum(tg.params for tg in targets)

    # Weights.
    linear = sum(
        x.shape[0] * x.shape[1] for x in shape.tensors if x.kind == "linear" and not x.name.startswith("lm_head")
    )
    experts = shape.group("experts")
    rest = shape.total - linear - experts
    nf4 = recipe.quantization == "nf4"
    w_linear = linear * (NF4_BYTES if nf4 else b)
    # axolotl runs PEFT's prepare_model_for_kbit_training on a 4-bit base unless the experts are 4-bit too:
    # it upcasts every weight that is not 4-bit to fp32, and puts only norms, router and embeddings back.
    upcast = nf4 and recipe.tool == "axolotl" and not recipe.quantize_moe_experts
    expert_bytes = NF4_BYTES if nf4 and recipe.quantize_moe_experts else (4 if upcast else b)
    w_experts = experts * expert_bytes
    w_rest = rest * b
    dtype = "bf16" if b == 2 else "fp32"
    if nf4 and recipe.quantize_moe_experts:
        experts_as = "nf4"
    elif upcast:
        experts_as = "fp32 (not quantized by bitsandbytes; upcast by axolotl's prepare_model_for_kbit_training)"
    elif nf4:
        experts_as = f"{dtype} (bitsandbytes does not quantize 3-D experts)"
    else:
        experts_as = dtype
    memory = [
        MemoryItem(
            name="weights", bytes=w_linear / shard, note=f"{linear / 1e9:.3f}B nn.Linear in {'nf4' if nf4 else dtype}"
        ),
        MemoryItem(name="weights", bytes=w_experts / shard, note=f"{experts / 1e9:.3f}B experts in {experts_as}"),
        MemoryItem(
            name="weights",
            bytes=w_rest / shard,
            note=f"{rest / 1e9:.3f}B embeddings, lm_head, norms, router in {dtype}",
        ),
    ]
    if sharded and shape.num_layers:
        layer = (shape.total - shape.group("embedding") - shape.group("lm_head")) / shape.num_layers * b
        memory.append(
            MemoryItem(name="weights", bytes=2 * layer, note=f"{recipe.distributed.strategy}: two gathered layers")
        )

    opt = OPTIMIZER_STATE_BYTES.get(t.optimizer)
    if opt is None:
        opt = 8
        notes.append(f"optimizer {t.optimizer}: state size unknown, AdamW's 8 bytes/parameter assumed")
    memory += [
        MemoryItem(name="adapter", bytes=adapter * 4 / shard, note=f"{adapter / 1e6:.1f}M parameters in fp32"),
        MemoryItem(name="gradients", bytes=adapter * 4 / shard, note="fp32"),
        MemoryItem(name="optimizer", bytes=adapter * opt / shard, note=f"{t.optimizer}: {opt} bytes/parameter"),
    ]

    # Activations of one micro-batch.
    per_layer = _layer_activation_bytes(shape, recipe, b, targets) * tokens
    loss_tokens = tokens
    if recipe.tool == "swift" and data is not None and data.longest_supervised and basis != "given":
        # swift computes logits only where labels are trained (logits_to_keep): the assistant turn,
        # its <|im_end|> and the newline after it.
        loss_tokens = min(tokens, (data.longest_supervised + 2) * t.micro_batch_size)
    logits = loss_tokens * shape.vocab_size * LOSS_BYTES_PER_LOGIT
    transient, saved = _expert_stack_bytes(shape, recipe, 4 if upcast else b, targets)
    if t.gradient_checkpointing:
        checkpoints = shape.num_layers * tokens * shape.hidden_size * b
        layer_peak = per_layer + transient
        memory += [
            MemoryItem(name="activations", bytes=checkpoints, note=f"{shape.num_layers} checkpointed layer inputs"),
            MemoryItem(
                name="activations",
                bytes=max(logits, layer_peak),
                note=f"loss: 3 fp32 tensors of logits size for {loss_tokens} tokens"
                if logits >= layer_peak
                else "one recomputed layer + expert copies",
            ),
        ]
    else:
        memory += [
            MemoryItem(
                name="activations", bytes=shape.num_layers * (per_layer + saved), note="every layer (no checkpointing)"
            ),
            MemoryItem(
                name="activations",
                bytes=logits + max(0.0, transient - saved),
                note=f"loss: 3 fp32 tensors of logits size for {loss_tokens} tokens",
            ),
        ]
    tensors = sum(m.bytes for m in memory)
    if recipe.device == "cuda":
        memory.append(
            MemoryItem(
                name="runtime",
                bytes=CUDA_RUNTIME_BYTES + CUDA_ALLOCATOR_SLACK * tensors,
                note="CUDA context + allocator slack (1 GiB + 5 %)",
            )
        )
    if recipe.device == "cpu":
        memory.append(
            MemoryItem(
                name="runtime",
                bytes=CPU_RUNTIME_BYTES.get(recipe.tool, 0),
                note=f"the {recipe.tool} process itself (interpreter, torch, the tool; measured on CPU)",
            )
        )
    total = sum(m.bytes for m in memory)
    return TrainEstimate(
        recipe=recipe.name,
        tool=recipe.tool,
        base_model=recipe.base_model,
        config_source=config_source,
        shape=shape,
        adapter=targets,
        adapter_params=adapter,
        sequence_tokens=sequence_tokens,
        sequence_basis=basis,
        memory=memory,
        total_bytes=total,
        device_memory_gib=recipe.estimate.gpu_memory_gib,
        device=recipe.device,
        devices=n,
        strategy=recipe.distributed.strategy,
        data=data,
        notes=notes,
    )


def estimate_train(
    recipe: TrainRecipe, *, shape: ModelShape | None = None, data: DataStats | None = None
) -> TrainEstimate:
    """The estimate of ``recipe`` before launch: its base model's config built on the meta device
    (:func:`~novelcraft.train.shape.model_shape`), the token counts of ``data.train`` when the file
    exists (:func:`~novelcraft.train.datastats.data_stats`), memory per device and a time range.

    >>> est = estimate_train(load_recipe("recipes/train/axolotl-qlora-r64.yaml"))
    >>> print(format_estimate(est))
    """
    from pathlib import Path

    from .shape import load_model_config, model_shape

    source = ""
    if shape is None:
        config, path = load_model_config(recipe.base_model)
        source = str(path)
        shape = model_shape(config)
    if data is None and Path(recipe.data.train).is_file():
        from ..recipes import TokenizerConfig
        from ..tokens import load_token_counter
        from .datastats import data_stats

        try:
            counter = load_token_counter(TokenizerConfig(name=recipe.base_model))
            tokenizer_note = ""
        except NovelcraftError:
            counter = load_token_counter()
            tokenizer_note = f"no tokenizer for {recipe.base_model} here: tokens counted with the Qwen3 tokenizer"
        data = data_stats(recipe.data.train, counter, recipe.data.sequence_len)
    else:
        tokenizer_note = ""
    est = estimate_memory(recipe, shape, data=data, config_source=source)
    if tokenizer_note:
        est.notes.append(tokenizer_note)
    if data is not None and data.kept_records:
        est.time = estimate_time(recipe, shape, data, est.sequence_tokens)
        if data.dropped:
            est.notes.append(
                f"{data.dropped} of {data.records} records are longer than sequence_len {data.sequence_len} "
                f"(up to {data.dropped_longest} tokens) and will be dropped"
            )
    else:
        est.notes.append(f"{recipe.data.train} not found: no token counts or time")
    if est.time is None and data is not None and data.kept_records:
        est.notes.append("no throughput for device cpu: set estimate.tokens_per_second for a time range")
    return est

"""Plain-text report of a :class:`~novelcraft.train.estimate.TrainEstimate` (``novelcraft train --estimate``)."""

from __future__ import annotations

from .estimate import GIB, TrainEstimate
from .shape import GROUPS


def _count(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def _gib(n: float) -> str:
    return f"{n / GIB:7.2f} GiB"


def format_estimate(est: TrainEstimate) -> str:
    """The estimate as aligned text: parameters by group, adapter by target, memory per device, data and
    time, and the assumptions behind them. Every figure is computed, none is measured."""
    s = est.shape
    lines = [
        f"estimate for {est.recipe} ({est.tool}) - computed from the model config, not measured",
        f"model: {est.base_model} ({s.architecture}, config: {est.config_source or 'given'})",
        f"  parameters: {_count(s.total)} total, {_count(s.active)} active per token; {s.num_layers} layers, "
        f"hidden {s.hidden_size}, vocab {s.vocab_size}"
        + (
            f", {s.num_experts} experts ({s.experts_per_token} active, width {s.moe_intermediate_size})"
            if s.num_experts
            else ""
        ),
        "  by group: " + ", ".join(f"{g} {_count(s.params[g])}" for g in GROUPS if s.params.get(g)),
        f"adapter: {_count(est.adapter_params)} parameters",
    ]
    for t in est.adapter:
        what = f"stacks of {s.num_experts} experts" if t.kind == "parameter" else "modules"
        lines.append(f"  {t.target:28s} r={t.rank:<4d} {t.matches:4d} {what:24s} {_count(t.params):>9s}")
    where = f"per GPU ({est.strategy} over {est.devices} GPUs; " if est.devices > 1 else f"on one {est.device} ("
    lines.append(f"memory {where}activations for {est.sequence_tokens} tokens per sample: {est.sequence_basis}):")
    for m in est.memory:
        lines.append(f"  {m.name:12s} {_gib(m.bytes)}  {m.note}")
    if est.device == "cpu":
        verdict = "peak resident memory of the training process"
    else:
        verdict = f"{'fits' if est.fits else 'does NOT fit'} in {est.device_memory_gib:g} GiB"
    lines.append(f"  {'total':12s} {_gib(est.total_bytes)}  {verdict}")
    if est.data is not None:
        d = est.data
        lines.append(
            f"data: {d.path}: {d.kept_records} of {d.records} records fit sequence_len {d.sequence_len}; "
            f"{d.tokens:,} tokens per epoch ({d.supervised_tokens:,} trained), longest {d.longest}"
        )
        if est.adapter_params and d.supervised_tokens:
            lines.append(
                f"  adapter parameters per trained token of one epoch: {est.adapter_params / d.supervised_tokens:,.0f}"
            )
    if est.time is not None:
        tm = est.time
        lines.append(
            f"time: {tm.optimizer_steps} optimizer steps, {tm.train_tokens:,} tokens; at "
            f"{tm.tokens_per_second[0]:,.0f}-{tm.tokens_per_second[1]:,.0f} tokens/s: "
            f"{_duration(tm.hours[0])} to {_duration(tm.hours[1])}"
        )
        lines.append(f"  throughput: {tm.source}")
    lines += [f"note: {n}" for n in est.notes]
    return "\n".join(lines)

"""Training time from a stated throughput: optimizer steps and tokens of the data set, over a range of
tokens per second that the recipe states or that an assumed model FLOP utilisation gives. Never measured."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from .datastats import DataStats
from .recipe import TrainRecipe
from .shape import ModelShape


class TimeEstimate(BaseModel):
    """Training time from a stated throughput (a range, never a measurement)."""

    optimizer_steps: int
    train_tokens: int = Field(description="tokens of all epochs (records longer than sequence_len dropped)")
    tokens_per_second: tuple[float, float] = Field(description="all devices together")
    hours: tuple[float, float]
    source: str = Field(description="where the throughput comes from")


def training_flops_per_token(shape: ModelShape, recipe: TrainRecipe, sequence_tokens: int) -> float:
    """FLOPs per trained token: 2 x active parameters per pass (forward, input gradients, and the
    recomputation with gradient checkpointing; frozen weights need no weight gradient), plus attention."""
    passes = 3 if recipe.training.gradient_checkpointing else 2
    attention = 2 * shape.num_layers * shape.num_heads * shape.head_dim * sequence_tokens  # causal: half of QK^T and AV
    return passes * (2 * shape.active + attention)


def estimate_time(recipe: TrainRecipe, shape: ModelShape, data: DataStats, sequence_tokens: int) -> TimeEstimate | None:
    """Optimizer steps and hours of ``recipe`` over ``data`` at the recipe's stated throughput."""
    t = recipe.training
    n = recipe.distributed.num_gpus
    per_step = t.micro_batch_size * t.gradient_accumulation_steps * n
    if recipe.data.sample_packing:
        steps_per_epoch = max(1, math.ceil(data.tokens / (recipe.data.sequence_len * per_step)))
    else:
        steps_per_epoch = max(1, math.ceil(data.kept_records / per_step))
    steps = min(t.max_steps, steps_per_epoch * t.epochs) if t.max_steps else steps_per_epoch * t.epochs
    train_tokens = round(data.tokens * steps / steps_per_epoch)
    stated = recipe.estimate.tokens_per_second
    if stated is not None:
        tps = (stated[0] * n, stated[1] * n)
        source = f"estimate.tokens_per_second {stated[0]:g}-{stated[1]:g} per device (stated)"
    elif recipe.device == "cuda":
        flops = training_flops_per_token(shape, recipe, max(1, sequence_tokens // 2))
        lo, hi = (m * recipe.estimate.gpu_tflops * 1e12 / flops * n for m in recipe.estimate.mfu)
        tps = (lo, hi)
        source = (
            f"assumed {recipe.estimate.mfu[0]:.0%}-{recipe.estimate.mfu[1]:.0%} of {recipe.estimate.gpu_tflops:g} "
            f"TFLOP/s per GPU at {flops / 1e9:.1f} GFLOP per token (not measured)"
        )
    else:
        return None
    hours = (train_tokens / tps[1] / 3600, train_tokens / tps[0] / 3600)
    return TimeEstimate(
        optimizer_steps=steps, train_tokens=train_tokens, tokens_per_second=tps, hours=hours, source=source
    )

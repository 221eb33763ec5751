"""One variant of ``train_qlora.py --full-shape``, in a process of its own: real optimizer steps of a
RANDOM-WEIGHT model with real shapes, set up as the recipe's tool sets it up; prints one JSON line.

    python benchmarks/_full_shape_step.py VARIANT.json [--device cuda|cpu] [--steps N]

It needs torch, transformers >= 5 (Qwen3-MoE with fused 3-D experts), peft (``target_parameters``) and,
for 4-bit variants, bitsandbytes; it imports nothing of novelcraft, so it runs on a machine that has
only those (``benchmarks/gpu/run_full_shape.sh``). VARIANT.json is one entry of
``benchmarks/gpu/full_shape_plan.json`` (written from the shipped recipes by
``train_qlora.py --write-plan``).

What it reproduces of the tools (axolotl / MS-SWIFT are not installed where it runs):

* nn.Linear layers (lm_head excepted) as bitsandbytes ``Linear4bit`` nf4 with double quantisation, as
  transformers' bitsandbytes loading makes them;
* 4-bit experts (axolotl's ``quantize_moe_experts``): bitsandbytes' ``replace_parameter_4bit`` on each
  fused expert tensor, dequantised once per experts forward (a parametrisation cache around it), with the
  two fixes the nested PEFT wrappers need on such parameters (see ``_patch_peft_for_parametrized``);
* axolotl without 4-bit experts: the experts upcast to fp32, as PEFT's prepare_model_for_kbit_training does;
* swift: logits only for the trained positions (its ``logits_to_keep``);
* PEFT LoRA with the recipe's ranks (``rank_pattern`` for the experts), bf16 autocast as the HF trainer
  uses, gradient checkpointing (non-reentrant), the recipe's optimizer and gradient accumulation.

The weights are random (normal, std 0.02): the memory and time are those of the real shapes, the loss
means nothing. Each output line says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from importlib import metadata


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def build_model(config: dict, device, dtype):
    """Qwen3MoeForCausalLM (or any causal LM) of ``config`` with random weights, built on ``device``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    data = dict(config)
    cfg = AutoConfig.for_model(data.pop("model_type"), **data)
    cfg.use_cache = False
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model


def quantize_linear(model, compute_dtype, device) -> int:
    """Replace every nn.Linear but lm_head by a bitsandbytes nf4 Linear4bit (double quantisation)."""
    import bitsandbytes as bnb
    import torch

    n = 0
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if not isinstance(child, torch.nn.Linear) or full.startswith("lm_head"):
                continue
            q = bnb.nn.Linear4bit(
                child.in_features, child.out_features, bias=child.bias is not None,
                compute_dtype=compute_dtype, compress_statistics=True, quant_type="nf4", device="meta",
            )  # fmt: skip
            q.weight = bnb.nn.Params4bit(
                child.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4"
            )
            if child.bias is not None:
                q.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(module, child_name, q.to(device))  # .to() quantizes
            n += 1
    model.is_loaded_in_4bit = True  # PEFT then wraps Linear4bit with its bitsandbytes LoRA layer
    return n


def _cached_forward_hooks(module) -> None:
    """Keep a parametrised (dequantised) expert stack for the whole experts forward: the forward indexes
    the stack once per expert, which would otherwise dequantise it every time."""
    from torch.nn.utils import parametrize

    def pre(mod, args):
        mod._nc_cache = parametrize.cached()
        mod._nc_cache.__enter__()

    def post(mod, args, output):
        mod._nc_cache.__exit__(None, None, None)

    module.register_forward_pre_hook(pre)
    module.register_forward_hook(post)


def quantize_experts(model, names: list[str]) -> list[str]:
    """4-bit nf4 fused experts through bitsandbytes' parametrisation; returns the full parameter names."""
    from bitsandbytes.nn.parametrize import replace_parameter_4bit

    done = []
    for mod_name, module in list(model.named_modules()):
        own = dict(module.named_parameters(recurse=False))
        params = [p for p in names if p in own and own[p].dim() == 3]
        if not params:
            continue
        for p in params:
            replace_parameter_4bit(module, p, compress_statistics=True, quant_type="nf4")
            done.append(f"{mod_name}.{p}")
        _cached_forward_hooks(module)
    return done


def _patch_peft_for_parametrized() -> None:
    """Two fixes PEFT's ParamWrapper needs on already-parametrised (4-bit) parameters:

    1. Two targeted parameters of one module nest two wrappers; the outer one opens the parametrisation
       cache before the inner one adds its LoRA, so the cache would hold the stack without the inner LoRA
       (which then gets no gradient): drop that entry once the LoRA is in place.
    2. PEFT's clean-up looks only for its delta proxy, not for the low-rank factors proxy of newer PEFT,
       when another parametrisation is present: remove either, or the adapted delta piles up per forward.
    """
    from contextlib import contextmanager

    import torch.nn.utils.parametrize as P
    from peft.tuners.lora import layer as lora_layer

    wrapper = lora_layer.ParamWrapper
    proxies = tuple(
        c
        for c in (getattr(lora_layer, "_LoraParameterProxy", None), getattr(lora_layer, "_LoraFactorsProxy", None))
        if c
    )
    original = wrapper._activate_lora

    @contextmanager
    def activate(self, active_adapters):
        with original(self, active_adapters):
            key = (id(self.get_base_layer()), self.parameter_name)
            P._cache.pop(key, None)
            try:
                yield
            finally:
                P._cache.pop(key, None)

    def remove(self):
        base, name = self.get_base_layer(), self.parameter_name
        plist = base.parametrizations[name]
        if len(plist) == 1:
            P.remove_parametrizations(base, name, leave_parametrized=False)
            return
        for i in reversed(range(len(plist))):
            if isinstance(plist[i], proxies):
                del plist[i]
                return

    wrapper._activate_lora = activate
    wrapper._remove_parametrizations = remove


def apply_lora(model, v: dict, parametrized: list[str]):
    import peft

    targets = list(v["target_parameters"])
    if parametrized:
        # PEFT matches parametrised parameters by their full name only.
        targets = [n for n in parametrized if any(n.endswith("." + t) for t in targets)]
        _patch_peft_for_parametrized()
    rank = {t: v["expert_r"] for t in v["target_parameters"]} if v["expert_r"] != v["r"] else {}
    alpha = {t: v["expert_alpha"] for t in v["target_parameters"]} if rank else {}
    config = peft.LoraConfig(
        r=v["r"], lora_alpha=v["alpha"], lora_dropout=0.0, target_modules=list(v["target_modules"]),
        target_parameters=targets, rank_pattern=rank, alpha_pattern=alpha, task_type="CAUSAL_LM",
    )  # fmt: skip
    return peft.get_peft_model(model, config)


def make_optimizer(name: str, params, lr: float):
    import torch

    if name in ("paged_adamw_8bit", "adamw_bnb_8bit", "adamw_8bit"):
        import bitsandbytes as bnb

        cls = bnb.optim.PagedAdamW8bit if name.startswith("paged") else bnb.optim.AdamW8bit
        return cls(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr)


def _ranks(model) -> dict[str, list[int]]:
    out: dict[str, set[int]] = {}
    for name, module in model.named_modules():
        if "default" in getattr(module, "lora_A", {}):
            target = getattr(module, "parameter_name", None) or name.rsplit(".", 1)[-1]
            out.setdefault(target, set()).add(
                module.lora_A["default"].out_features // getattr(module, "num_experts", 1)
            )
    return {k: sorted(s) for k, s in sorted(out.items())}


def _peak_rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def run(v: dict, device_name: str, steps: int) -> dict:
    import torch

    device = torch.device(device_name)
    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    t0 = time.perf_counter()
    model = build_model(v["config"], device, dtype)
    if v["upcast_experts_fp32"]:
        for name, p in model.named_parameters():
            if ".experts." in name:
                p.data = p.data.float()
    if v["quantize_linear"]:
        quantize_linear(model, dtype, device)
    parametrized = (
        quantize_experts(model, [t.rsplit(".", 1)[-1] for t in v["target_parameters"]] or ["gate_up_proj", "down_proj"])
        if v["quantize_experts"]
        else []
    )
    for p in model.parameters():
        p.requires_grad_(False)
    model = apply_lora(model, v, parametrized)
    if v["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(v["optimizer"], trainable, 1e-4)
    build_s = time.perf_counter() - t0

    gen = torch.Generator(device="cpu").manual_seed(v.get("seed", 0))
    seq, trained, mb = v["sequence_len"], v["trained_tokens"], v["micro_batch_size"]
    vocab = v["config"]["vocab_size"]

    def batch():
        ids = torch.randint(0, vocab - 300, (mb, seq), generator=gen).to(device)
        labels = ids.clone()
        labels[:, : seq - trained] = -100  # the prompt is masked, the scene is trained
        kw = {}
        if v["loss_on_trained_only"]:
            keep = trained + 2  # swift's logits_to_keep: the trained positions and one before them
            kw["logits_to_keep"] = keep
            labels = labels[:, -keep:]
        return ids, labels, kw

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    losses: list[float] = []
    grads_ok = None

    def optimizer_step(micro: int) -> None:
        nonlocal grads_ok
        for _ in range(micro):
            ids, labels, kw = batch()
            with autocast:
                out = model(input_ids=ids, labels=labels, **kw)
            loss = out.loss / micro
            del out
            loss.backward()
            losses.append(float(loss) * micro)
        if grads_ok is None:  # every lora_B must have a gradient (lora_A starts random, B at zero)
            grads_ok = all(
                p.grad is not None and bool(p.grad.abs().sum() > 0)
                for n, p in model.named_parameters()
                if "lora_B" in n
            )
        opt.step()
        opt.zero_grad(set_to_none=True)

    if cuda:
        torch.cuda.synchronize()
        prep_allocated = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    result: dict = {
        "variant": v["name"],
        "random_weights": True,
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "build_s": round(build_s, 1),
        "trainable_params": sum(p.numel() for p in trainable),
        "ranks": _ranks(model),
    }
    times: list[float] = []
    try:
        optimizer_step(1)  # warm-up: kernels, allocator, optimizer state (counted in the peak)
        for _ in range(steps):
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            optimizer_step(v["gradient_accumulation_steps"])
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        result["oom"] = None
    except torch.OutOfMemoryError as exc:
        result["oom"] = " ".join(str(exc).split())[:300]
    result.update(
        s_per_optimizer_step=[round(t, 2) for t in times],
        tokens_per_optimizer_step=seq * mb * v["gradient_accumulation_steps"],
        lora_B_grads_nonzero=grads_ok,
        losses=[round(x, 4) for x in losses[:3]],
        parametrizations_after=sorted(
            {
                len(m.parametrizations[p])
                for m in model.modules()
                if hasattr(m, "parametrizations")
                for p in m.parametrizations
            }
        ),
    )
    if cuda:
        result.update(
            peak_allocated_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
            peak_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2),
            allocated_after_build_gib=round(prep_allocated / 2**30, 2),
        )
    else:
        result["peak_rss_gib"] = round(_peak_rss_bytes() / 2**30, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("variant", help="JSON file of one plan entry")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=1, help="timed optimizer steps after one warm-up step")
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("full_shape_step: no CUDA device visible to torch: nothing to measure", file=sys.stderr)
        return 2
    with open(args.variant, encoding="utf-8") as fh:
        v = json.load(fh)
    result = run(v, args.device, args.steps)
    result["versions"] = {p: _version(p) for p in ("torch", "transformers", "peft", "bitsandbytes", "accelerate")}
    result["note"] = "random weights, real shapes: memory and time are measured, the loss means nothing"
    result["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    print(json.dumps(result), flush=True)
    return 0 if result["oom"] is None else 3


if __name__ == "__main__":
    sys.exit(main())

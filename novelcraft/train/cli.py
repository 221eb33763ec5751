"""Subcommands ``train``, ``merge``, ``export`` and ``make-tiny-moe``: thin wrappers over :mod:`novelcraft.train`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..commands import Command


def _print_estimate(recipe: Any, path: str, *, required: bool) -> None:
    from .estimate import estimate_train
    from .report import format_estimate
    from .shape import ShapeError

    try:
        print(format_estimate(estimate_train(recipe)), flush=True)
    except ShapeError as exc:
        err = ShapeError(exc.cause, path=exc.path or path, step="estimate")
        if required:
            raise err from None
        print(f"novelcraft: no estimate: {err}", file=sys.stderr)


def train(args: argparse.Namespace) -> int:
    """``novelcraft train RECIPE``: estimate (``--estimate``), check (``--check``) or launch a training run."""
    from ..recipes import load_recipe
    from .run import check_train, run_train

    recipe = load_recipe(args.recipe, args.overrides, kind="train")
    if args.estimate or args.check:
        # --check prints the estimate too, but a missing torch does not stop the tool's own check.
        _print_estimate(recipe, args.recipe, required=args.estimate)
        if args.estimate and not args.check:
            return 0
    if args.check:
        checked = check_train(recipe)
        print(f"ok: {checked.tool} accepts {checked.config_path}")
        return 0
    result = run_train(recipe, check=not args.no_check)
    print(f"trained in {result.seconds:.0f} s; adapter: {result.adapter_dir}; stats: {result.run_dir / 'stats.json'}")
    return 0


def merge(args: argparse.Namespace) -> int:
    """``novelcraft merge ADAPTER``: merge a LoRA adapter into its base model (optionally to GGUF)."""
    from .merge import export_gguf, merge_adapter, resolve_gguf_converter

    if args.gguf:
        resolve_gguf_converter(args.gguf_converter)  # fail before the merge, not after it
    report = merge_adapter(args.adapter, args.out, base_model=args.base, dtype=args.dtype, python=args.python)
    print(json.dumps(report))
    if args.gguf:
        print(export_gguf(args.out, args.gguf, converter=args.gguf_converter, python=args.python))
    return 0


def export(args: argparse.Namespace) -> int:
    """``novelcraft export RECIPE``: adapter -> merged model -> GGUF -> quantized GGUF -> Ollama Modelfile."""
    from ..recipes import load_recipe
    from .export import export_model

    recipe = load_recipe(args.recipe, args.overrides, kind="export")
    report = export_model(recipe, build_quantize=args.build_quantize)
    for key, f in report["files"].items():
        print(f"{key}: {recipe.run_dir / f['file']} ({f['bytes'] / 2**20:.1f} MiB)")
    print(f"{report['method']} export in {report['seconds']:.0f} s; report: {recipe.run_dir / 'export.json'}")
    return 0


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="YAML recipe (kind: export)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. adapter=runs/NAME/output")
    p.add_argument(
        "--build-quantize",
        action="store_true",
        help="build llama-quantize from the pinned llama-cpp-python sdist when it is not cached (~5-20 min)",
    )


def make_tiny_moe(args: argparse.Namespace) -> int:
    """``novelcraft make-tiny-moe OUT``: write a tiny random Qwen3-MoE with the Qwen3 tokenizer."""
    from .tiny import make_tiny_qwen3_moe

    if args.dense:
        from .tiny import make_tiny_qwen2

        print(make_tiny_qwen2(args.out, overwrite=args.overwrite))
        return 0
    print(make_tiny_qwen3_moe(args.out, overwrite=args.overwrite))
    return 0


def _train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="YAML recipe (kind: train)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. lora.r=128 training.epochs=4")
    p.add_argument(
        "--check", action="store_true", help="render the tool config and validate it with the tool itself; no training"
    )
    p.add_argument(
        "--estimate",
        action="store_true",
        help="print parameters, memory per device and a time range from the model config (no weights); no training",
    )
    p.add_argument("--no-check", action="store_true", help="skip the tool's own validation before training")


def _merge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapter", help="adapter folder (adapter_config.json), e.g. runs/NAME/output")
    p.add_argument("out", help="folder for the merged model")
    p.add_argument("--base", help="base model (default: the adapter's base_model_name_or_path)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--python", help="interpreter or venv with torch+transformers+peft (default: auto)")
    p.add_argument("--gguf", help="also write this GGUF file (needs --gguf-converter)")
    p.add_argument("--gguf-converter", help="llama.cpp's convert_hf_to_gguf.py (or set LLAMA_CPP_CONVERT)")


def _tiny_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", nargs="?", default="runs/tiny-qwen3-moe")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--dense", action="store_true", help="a tiny dense Qwen2 (the Qwen2.5 architecture) instead")


COMMANDS = [
    Command(
        "train",
        "fine-tune with Axolotl or MS-SWIFT from a train recipe (--estimate: memory and time first)",
        _train_arguments,
        "novelcraft.train.cli:train",
    ),
    Command(
        "merge",
        "merge a LoRA adapter into its base model (bf16), optionally to GGUF",
        _merge_arguments,
        "novelcraft.train.cli:merge",
    ),
    Command(
        "export",
        "deliver a trained adapter: merge -> GGUF (llama.cpp) -> quantize -> Ollama Modelfile",
        _export_arguments,
        "novelcraft.train.cli:export",
    ),
    Command(
        "make-tiny-moe",
        "write a tiny random Qwen3-MoE + Qwen3 tokenizer (smoke tests)",
        _tiny_arguments,
        "novelcraft.train.cli:make_tiny_moe",
    ),
]

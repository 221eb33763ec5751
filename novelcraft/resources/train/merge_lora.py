"""Run with a Python that has torch, transformers and peft (a tool venv, or the main one with peft).

    python merge_lora.py ADAPTER_DIR OUT_DIR [--base MODEL] [--dtype bfloat16|float16|float32]

Loads the base model unquantized in DTYPE (a QLoRA adapter is merged into full-precision weights, not
into the 4-bit ones it was trained against), applies the adapter with PEFT, merges it
(``merge_and_unload``) and saves safetensors plus the tokenizer. Prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("adapter")
    ap.add_argument("out")
    ap.add_argument("--base")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = ap.parse_args(argv)

    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    peft_cfg = PeftConfig.from_pretrained(args.adapter)
    base = args.base or peft_cfg.base_model_name_or_path
    dtype = getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, low_cpu_mem_usage=True)
    model = PeftModel.from_pretrained(model, args.adapter)
    merged = model.merge_and_unload()
    merged.save_pretrained(args.out, safe_serialization=True)
    # The adapter folder holds the tokenizer (and chat template) the run trained with, when the tool saved it.
    tok_src = args.adapter if os.path.isfile(os.path.join(args.adapter, "tokenizer_config.json")) else base
    AutoTokenizer.from_pretrained(tok_src).save_pretrained(args.out)
    print(
        json.dumps(
            {
                "base": base,
                "out": args.out,
                "dtype": args.dtype,
                "tokenizer_from": tok_src,
                "parameters": sum(p.numel() for p in merged.parameters()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

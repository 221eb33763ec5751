"""Run inside a tool venv: load a trained adapter back onto its base model with PEFT and inspect it.

    python inspect_adapter.py BASE_DIR ADAPTER_DIR

Prints one JSON line: the LoRA tensors found, how many lora_B matrices are still all zero (they start
at zero, so a zero one after training means no gradient reached it), whether expert (3-D) parameters
and the router carry LoRA, and how far the adapted and the merged model's logits are from each other
and from the base model's, and the rank of every adapted target (experts: per expert).
"""

import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main(base_dir: str, adapter_dir: str) -> int:
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    ids = torch.randint(0, 151000, (1, 24))
    with torch.no_grad():
        base_logits = base(ids).logits.clone()
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    ranks: dict[str, set[int]] = {}
    for name, module in model.named_modules():
        if "default" not in getattr(module, "lora_A", {}):
            continue
        a = module.lora_A["default"]
        experts = getattr(module, "num_experts", 1)
        target = getattr(module, "parameter_name", None) or name.rsplit(".", 1)[-1]
        ranks.setdefault(target, set()).add(a.out_features // experts)
    zero_b = sorted(n for n, p in lora.items() if "lora_B" in n and float(p.abs().sum()) == 0.0)
    with torch.no_grad():
        peft_logits = model(ids).logits.clone()
    merged = model.merge_and_unload()
    with torch.no_grad():
        merged_logits = merged(ids).logits
    out = {
        "ranks": {k: sorted(v) for k, v in sorted(ranks.items())},
        "lora_tensors": len(lora),
        "lora_B": sum("lora_B" in n for n in lora),
        "zero_lora_B": zero_b[:5],
        "expert_lora": sum(".experts" in n for n in lora),
        "attention_lora": sum(("q_proj" in n or "o_proj" in n) for n in lora),
        "router_lora": sorted(n for n in lora if ".mlp.gate." in n),
        "adapter_effect": float((peft_logits - base_logits).abs().max()),
        "merge_error": float((merged_logits - peft_logits).abs().max()),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

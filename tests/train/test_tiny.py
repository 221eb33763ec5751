"""The tiny random Qwen3-MoE used by the CPU smoke runs."""

from __future__ import annotations

from pathlib import Path


def test_tiny_model_is_a_qwen3_moe_with_the_instruct_template(tiny_model: Path, counter):
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(tiny_model)
    assert cfg.model_type == "qwen3_moe" and cfg.num_experts_per_tok == 2
    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert tok.eos_token == "<|im_end|>"
    text = "It was a bright cold day in April."
    assert tok.encode(text, add_special_tokens=False) == counter.encode(text)
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    rendered = tok.apply_chat_template(msgs, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\nA<|im_end|>\n") and "<think>" not in rendered

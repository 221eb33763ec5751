"""Real engines shared by the backend tests and the engine contract suite (started once per session)."""

from __future__ import annotations

import logging
import os
import time

import pytest

from novelcraft.llm.config import LLMConfig

log = logging.getLogger(__name__)

SERVED = "smollm2"
MAX_MODEL_LEN = 2048


def openai_config(base_url: str, **kw) -> LLMConfig:
    opts = {"base_url": base_url, "concurrency": 4, "timeout_s": 120.0}
    opts.update(kw.pop("openai", {}))
    return LLMConfig(
        backend="openai",
        model="embedded",
        served_model_name=kw.pop("served_model_name", SERVED),
        retry={"attempts": 2, "backoff_s": 0.05},
        openai=opts,
        **kw,
    )


@pytest.fixture(scope="session")
def transformers_engine():
    from novelcraft.llm.factory import make_engine

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    eng = make_engine(LLMConfig(sampling={"repetition_penalty": 1.2}, context_window=MAX_MODEL_LEN))
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def vllm_engine():
    from novelcraft.llm.factory import make_engine

    cfg = LLMConfig(backend="vllm", vllm={"gpu_memory_utilization": 0.3, "max_model_len": MAX_MODEL_LEN})
    t0 = time.perf_counter()
    eng = make_engine(cfg)
    log.info("vLLM engine start: %.1f s", time.perf_counter() - t0)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    from novelcraft.llm.embedded import embedded_model_dir
    from novelcraft.llm.server import VLLMServer
    from novelcraft.llm.testing import write_random_lora

    folder = tmp_path_factory.mktemp("vllm-server")
    write_random_lora(embedded_model_dir(), folder / "adapter")
    srv = VLLMServer(
        "embedded",
        served_model_name=SERVED,
        max_model_len=MAX_MODEL_LEN,
        gpu_memory_utilization=0.3,
        adapter=str(folder / "adapter"),
        max_lora_rank=8,
        log_file=folder / "server.log",
    )
    srv.start()
    log.info("vLLM server start: %.1f s", srv.startup_seconds)
    yield srv
    srv.stop()
    assert not srv.running()


@pytest.fixture(scope="session")
def openai_engine(vllm_server):
    from novelcraft.llm.factory import make_engine

    eng = make_engine(openai_config(vllm_server.base_url))
    yield eng
    eng.close()

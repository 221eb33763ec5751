"""``novelcraft.llm.server``: the vLLM server command line and its settings from a config."""

from __future__ import annotations

import socket

from novelcraft.llm.config import LLMConfig
from novelcraft.llm.server import free_port, server_command


def test_server_command_and_free_port():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # really free
    cmd = server_command(
        "/m",
        host="127.0.0.1",
        port=port,
        served_model_name="s",
        max_model_len=2048,
        gpu_memory_utilization=0.3,
        adapter="/a",
        max_lora_rank=16,
        python="py",
    )
    assert cmd[:5] == ["py", "-m", "vllm.entrypoints.openai.api_server", "--model", "/m"]
    joined = " ".join(cmd)
    assert f"--host 127.0.0.1 --port {port}" in joined and "--served-model-name s" in joined
    assert "--max-model-len 2048" in joined and "--gpu-memory-utilization 0.3" in joined
    assert "--enable-lora --lora-modules adapter=/a --max-lora-rank 16" in joined


def test_server_from_config():
    from novelcraft.llm.server import VLLMServer

    cfg = LLMConfig(
        backend="vllm",
        model="/m",
        adapter="/a",
        chat_template="/t.jinja",
        context_window=4096,
        vllm={"gpu_memory_utilization": 0.3, "max_lora_rank": 16},
    )
    srv = VLLMServer.from_config(cfg, port=8123)
    assert (srv.model, srv.served_model_name, srv.port, srv.max_model_len) == ("/m", "/m", 8123, 4096)
    assert (srv.adapter, srv.max_lora_rank, srv.chat_template) == ("/a", 16, "/t.jinja")
    assert srv.gpu_memory_utilization == 0.3
    assert srv.base_url == "http://127.0.0.1:8123/v1" and not srv.running()

"""Start and stop a local OpenAI-compatible vLLM server (for tests, benchmarks and local runs).

``vllm serve`` is unusable with the CPU build (it looks up a package named ``vllm``), so the server runs as
``python -m vllm.entrypoints.openai.api_server`` in its own process group, bound to 127.0.0.1 on a free
port, with its output in a log file. :class:`VLLMServer` waits (bounded) until ``/health`` answers and the
model is listed, and always stops the whole process group.

Example::

    with VLLMServer("embedded", served_model_name="smollm2", max_model_len=2048) as server:
        config = LLMConfig(backend="openai", served_model_name="smollm2",
                           openai={"base_url": server.base_url})
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NovelcraftError
from .backends.vllm_offline import apply_vllm_env, resolve_model

if TYPE_CHECKING:
    from .config import LLMConfig

log = logging.getLogger(__name__)

STEP = "vllm server"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_command(
    model: str,
    *,
    host: str,
    port: int,
    served_model_name: str | None = None,
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
    dtype: str | None = None,
    seed: int | None = None,
    adapter: str | None = None,
    adapter_name: str = "adapter",
    max_lora_rank: int | None = None,
    chat_template: str | None = None,
    extra_args: Sequence[str] = (),
    python: str | None = None,
) -> list[str]:
    """The command line of the API server (pure; ``model`` is a folder or hub id vLLM can load)."""
    cmd = [python or sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    cmd += ["--host", host, "--port", str(port)]
    # JSON answers with no free whitespace, as the in-process engine gives them
    cmd += ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}']
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    if max_model_len:
        cmd += ["--max-model-len", str(max_model_len)]
    if gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    if dtype:
        cmd += ["--dtype", dtype]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if adapter:
        # The adapter is served under its own model name; requests pick it by that name.
        cmd += ["--enable-lora", "--lora-modules", f"{adapter_name}={adapter}"]
        if max_lora_rank:
            cmd += ["--max-lora-rank", str(max_lora_rank)]
    if chat_template:
        cmd += ["--chat-template", chat_template]
    cmd += list(extra_args)
    return cmd


def _get_json(url: str, timeout: float) -> tuple[int, object]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local http only
        body = resp.read()
        status = resp.status
    try:
        return status, json.loads(body) if body else None
    except json.JSONDecodeError:
        return status, None


class VLLMServer:
    """A vLLM OpenAI-compatible server in a child process; a context manager.

    ``model`` is ``embedded``, a model folder or a hub id. ``startup_timeout_s`` bounds the wait for
    readiness (a cold CPU start compiles for ~2.5 min, a warm one takes ~25 s). The server log goes to
    ``log_file`` (default: a temporary file, kept after stop so a failure can be read).
    """

    def __init__(
        self,
        model: str,
        *,
        served_model_name: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        dtype: str | None = None,
        seed: int | None = 0,
        adapter: str | None = None,
        adapter_name: str = "adapter",
        max_lora_rank: int | None = None,
        chat_template: str | None = None,
        extra_args: Sequence[str] = (),
        log_file: str | Path | None = None,
        startup_timeout_s: float = 420.0,
        python: str | None = None,
    ) -> None:
        self.model = model
        self.served_model_name = served_model_name or model
        self.host = host
        self.port = port
        self.max_model_len = max_model_len
        self.gpu_memory_utilization = gpu_memory_utilization
        self.dtype = dtype
        self.seed = seed
        self.adapter = adapter
        self.adapter_name = adapter_name
        self.max_lora_rank = max_lora_rank
        self.chat_template = chat_template
        self.extra_args = tuple(extra_args)
        self.log_file = Path(log_file) if log_file else None
        self.startup_timeout_s = startup_timeout_s
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @classmethod
    def from_config(cls, config: LLMConfig, **kwargs: Any) -> VLLMServer:
        """A server for what an :class:`~novelcraft.llm.config.LLMConfig` describes (model, adapter, chat
        template, ``vllm`` options), serving the model as ``served_model_name`` (default: ``model``) and an
        adapter as ``adapter``. ``kwargs`` override the constructor's arguments (port, log_file, ...)."""
        opts = config.vllm
        args: dict[str, Any] = {
            "served_model_name": config.served_model_name or config.model,
            "max_model_len": opts.max_model_len or config.context_window,
            "gpu_memory_utilization": opts.gpu_memory_utilization,
            "dtype": opts.dtype,
            "seed": config.sampling.seed,
            "adapter": config.adapter,
            "max_lora_rank": opts.max_lora_rank if config.adapter else None,
            "chat_template": config.chat_template,
        }
        args.update(kwargs)
        return cls(config.model, **args)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``http://HOST:PORT/v1``)."""
        if self.port is None:
            raise RuntimeError("the server has not been started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (the health and model routes hang off it)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> VLLMServer:
        """Launch the server and wait until it serves the model; raise :class:`NovelcraftError` if it cannot."""
        if self.process is not None:
            raise RuntimeError("the server is already running")
        model = resolve_model(self.model)
        if self.port is None:
            self.port = free_port(self.host)
        if self.log_file is None:
            fd, name = tempfile.mkstemp(prefix="vllm-server-", suffix=".log")
            os.close(fd)
            self.log_file = Path(name)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = server_command(
            model,
            host=self.host,
            port=self.port,
            served_model_name=self.served_model_name,
            max_model_len=self.max_model_len,
            gpu_memory_utilization=self.gpu_memory_utilization,
            dtype=self.dtype,
            seed=self.seed,
            adapter=self.adapter,
            adapter_name=self.adapter_name,
            max_lora_rank=self.max_lora_rank,
            chat_template=self.chat_template,
            extra_args=self.extra_args,
            python=self.python,
        )
        env = dict(os.environ)
        apply_vllm_env(env)
        log.info("starting vLLM server on %s (log: %s)", self.base_url, self.log_file)
        t0 = time.perf_counter()
        with open(self.log_file, "ab") as log_fh:
            # Own process group: stop() must reach the server's children (compile workers) too.
            self.process = subprocess.Popen(
                cmd, stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        # A caller that exits without stop() must not leave a server holding the port and the cores.
        atexit.register(self.stop)
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t0
        log.info("vLLM server ready in %.1f s", self.startup_seconds)
        return self

    def _wait_ready(self, t0: float) -> None:
        assert self.process is not None
        deadline = t0 + self.startup_timeout_s
        while True:
            code = self.process.poll()
            if code is not None:
                raise NovelcraftError(
                    f"the server exited with status {code} before it was ready; last log lines: {self.log_tail()}",
                    path=self.log_file,
                    step=STEP,
                )
            if self._ready():
                return
            if time.perf_counter() > deadline:
                raise NovelcraftError(
                    f"the server was not ready at {self.base_url} after {self.startup_timeout_s:.0f} s; "
                    f"last log lines: {self.log_tail()}",
                    path=self.log_file,
                    step=STEP,
                )
            time.sleep(1.0)

    def _ready(self) -> bool:
        try:
            status, _ = _get_json(self.root_url + "/health", timeout=5)
            if status != 200:
                return False
            status, body = _get_json(self.base_url + "/models", timeout=5)
        except (urllib.error.URLError, OSError, TimeoutError):
            return False
        names = [m.get("id") for m in (body or {}).get("data", [])] if isinstance(body, dict) else []
        return status == 200 and self.served_model_name in names

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server log on one line (for error messages)."""
        if self.log_file is None or not self.log_file.is_file():
            return "(no log)"
        text = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:]) or "(empty log)"

    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the server's process group, then SIGKILL what is left after ``timeout_s``."""
        proc = self.process
        if proc is None:
            return
        self.process = None
        atexit.unregister(self.stop)
        if proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    log.warning("vLLM server %d did not stop on %s", proc.pid, sig.name)
        # Children that outlived the leader (same group) must not keep the port or the cores.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        log.info("vLLM server stopped (log: %s)", self.log_file)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

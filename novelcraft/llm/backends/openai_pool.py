"""A pool of OpenAI-compatible endpoints behind one engine: ``llm.openai.base_url: [URL, URL, ...]``.

Several servers of the same model (``vllm serve`` replicas on several machines or GPUs, or one server per
data-parallel rank) answer a batch together:

* **spread by load**: each request goes to the replica with the fewest requests in flight (at most
  ``openai.concurrency`` each, ties to the one that answered fewest). With ``openai.prefix_affinity`` a request
  whose prompt begins like one a replica answered before (a book's world context, a scene asked for twice)
  goes back to that replica while it has at most one request more in flight than the least loaded one, so
  its prefix cache serves the shared beginning;
* **failover**: a replica that fails a request (connection refused or reset, timeout, HTTP 429/5xx, or an
  answer it cut short as it stopped) is taken out for a cooldown (``retry.backoff_s``, doubled
  while it keeps failing, up to ``retry.max_backoff_s``) and the request goes to another replica at once.
  After its cooldown the replica gets one request on trial; an answer puts it back in rotation. A replica
  that refuses the key or does not serve the model is out for good;
* **one clear error**: when every replica has failed ``retry.attempts`` times in a row (or is out for good),
  the batch fails with one :class:`~novelcraft.llm.types.LLMError` naming each endpoint and its last error.

A request a server rejects (HTTP 400/422: a prompt over the context) fails alone, as with one server.
Answers come back in request order and a request is answered once: one retried after its replica failed
was never answered there. Which replica answers does not change an answer when the servers are
deterministic per request (see the README: batch-invariant serving).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ..config import LLMConfig
from ..types import LLMError, LLMRequest, LLMResponse, group_by_schema
from .openai_server import STEP, OpenAIEngine, describe_exception

log = logging.getLogger(__name__)

#: characters of a prompt (system turn, then the start of the first user turn) that decide its affinity.
AFFINITY_CHARS = 1024
#: prompt beginnings remembered for affinity (the oldest are forgotten first).
AFFINITY_MEMORY = 65536


@dataclasses.dataclass
class Replica:
    """One endpoint of the pool and what the pool knows of it."""

    url: str
    engine: OpenAIEngine
    in_flight: int = 0
    served: int = 0
    failures: int = 0
    streak: int = 0  # failures in a row
    out_until: float = 0.0
    cooldowns: int = 0
    dead: bool = False
    last_error: str | None = None

    def available(self, now: float, limit: int) -> bool:
        """Whether a request may go here now: in rotation with room, or back from a cooldown with none on trial."""
        if self.dead:
            return False
        if self.streak == 0:
            return self.in_flight < limit
        return now >= self.out_until and self.in_flight == 0

    def state(self) -> str:
        """``ok``, ``cooling`` (taken out, on trial after its cooldown) or ``dead`` (refused key or model)."""
        return "dead" if self.dead else "ok" if self.streak == 0 else "cooling"


def affinity_key(request: LLMRequest) -> str:
    """What decides a request's replica under prefix affinity: its system turn and the start of the next."""
    head = "".join(m.get("content", "") for m in request.messages[:2])[:AFFINITY_CHARS]
    return hashlib.blake2b(head.encode("utf-8"), digest_size=12).hexdigest()


class OpenAIPool:
    """Several OpenAI-compatible endpoints answering batches together (see the module docs)."""

    def __init__(self, config: LLMConfig, *, check_server: bool = True) -> None:
        urls = config.openai.urls
        if config.backend != "openai" or len(urls) < 2:
            raise ValueError("OpenAIPool needs backend: openai and at least two base_url entries")
        self.config = config
        self.name = config.identity()
        self.base_url = ", ".join(urls)
        self.limit = config.openai.concurrency
        self.affinity = config.openai.prefix_affinity
        once = config.retry.model_copy(update={"attempts": 1})  # the pool retries, on another replica
        self.replicas = [
            Replica(u.rstrip("/"), OpenAIEngine(self._one_config(u, once), check_server=False)) for u in urls
        ]
        self._seen: collections.OrderedDict[str, int] = collections.OrderedDict()
        if check_server:
            self.check_servers()

    def _one_config(self, url: str, retry: Any) -> LLMConfig:
        return self.config.model_copy(
            update={"openai": self.config.openai.model_copy(update={"base_url": url}), "retry": retry}
        )

    # -- health ------------------------------------------------------------------------------------

    def check_servers(self) -> None:
        """List each replica's models: a wrong model name is an error; replicas that cannot be reached are
        taken out (a cooldown) as long as one answers, and all unreachable (after the retries) is an error."""
        for attempt in range(self.config.retry.attempts):
            for r in self.replicas:
                if r.dead or (attempt and r.streak == 0):
                    continue
                try:
                    r.engine.check_server()
                    r.streak = 0
                except LLMError as exc:
                    if exc.__cause__ is None:  # it answered, and does not serve the model: the recipe is wrong
                        raise
                    self._failed(r, exc, what="listing the served models")
            if any(r.streak == 0 for r in self.replicas):
                return
            if attempt + 1 < self.config.retry.attempts:
                time.sleep(max(0.0, min(r.out_until for r in self.replicas) - time.monotonic()))
        raise self._exhausted_error()

    def _failed(self, r: Replica, exc: BaseException, *, what: str) -> None:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        r.failures += 1
        r.streak += 1
        r.last_error = describe_exception(cause) if exc.__cause__ is not None else str(exc)
        if r.engine._fatal(cause):
            r.dead = True
            log.error("%s: %s: %s; out of the pool for good", r.url, what, r.last_error)
            return
        retry = self.config.retry
        cooldown = min(retry.backoff_s * 2 ** (r.streak - 1), retry.max_backoff_s)
        r.out_until = time.monotonic() + cooldown
        r.cooldowns += 1
        log.warning("%s: %s: %s; out of rotation for %.1f s", r.url, what, r.last_error, cooldown)

    def _exhausted(self) -> bool:
        return all(r.dead or r.streak >= self.config.retry.attempts for r in self.replicas)

    def _exhausted_error(self) -> LLMError:
        parts = [f"{r.url}: {r.last_error or 'no answer'}" for r in self.replicas]
        return LLMError(
            f"every endpoint of the pool failed ({self.config.retry.attempts} tries in a row each): "
            + "; ".join(parts),
            step=STEP,
        )

    # -- scheduling --------------------------------------------------------------------------------

    def _pick(self, key: str | None, now: float) -> Replica | None:
        ready = [r for r in self.replicas if r.available(now, self.limit)]
        if not ready:
            return None
        least = min(r.in_flight for r in ready)
        if key is not None and key in self._seen:
            home = self.replicas[self._seen[key]]
            if home in ready and home.in_flight <= least + 1:
                return home
        return min(ready, key=lambda r: (r.in_flight, r.served, self.replicas.index(r)))

    def _remember(self, key: str | None, r: Replica) -> None:
        if key is None:
            return
        self._seen[key] = self.replicas.index(r)
        self._seen.move_to_end(key)
        while len(self._seen) > AFFINITY_MEMORY:
            self._seen.popitem(last=False)

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answer a batch in order over the replicas (see the module docs for spreading and failover)."""
        if not requests:
            return []
        first = self.replicas[0].engine
        formats = {schema: first.response_format(schema) for schema, _ in group_by_schema(requests)}
        keys = [affinity_key(r) if self.affinity else None for r in requests]
        results: list[LLMResponse | None] = [None] * len(requests)
        pending = collections.deque(range(len(requests)))
        running: dict[Future[LLMResponse], tuple[int, Replica]] = {}
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.limit * len(self.replicas), thread_name_prefix="novelcraft-pool")
        try:
            while pending or running:
                now = time.monotonic()
                while pending:
                    r = self._pick(keys[pending[0]], now)
                    if r is None:
                        break
                    i = pending.popleft()
                    r.in_flight += 1
                    running[pool.submit(r.engine._one, requests[i], formats, stop)] = (i, r)
                if not running:
                    if self._exhausted():
                        raise self._exhausted_error()
                    time.sleep(max(0.005, min(r.out_until for r in self.replicas if not r.dead) - now))
                    continue
                cooling = [r.out_until - now for r in self.replicas if r.streak and not r.dead and r.out_until > now]
                timeout = max(0.005, min(cooling)) if cooling and pending else None
                done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                for f in done:
                    i, r = running.pop(f)
                    r.in_flight -= 1
                    try:
                        results[i] = f.result()
                    except LLMError as exc:
                        self._failed(r, exc, what=f"request {requests[i].key}")
                        pending.appendleft(i)  # to another replica (or this one, after its cooldown)
                        continue
                    r.streak, r.served = 0, r.served + 1
                    self._remember(keys[i], r)
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
        return [r for r in results if r is not None]

    # -- statistics --------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, float]:
        """Requests, tokens and seconds over all replicas (as :class:`OpenAIEngine` counts them)."""
        total: dict[str, float] = {}
        for r in self.replicas:
            for k, v in r.engine.stats.items():
                total[k] = total.get(k, 0) + v
        return total

    def prefix_cache_hit_rate(self) -> float | None:
        """Share of prompt tokens the servers reported as cached (``None`` before any request)."""
        s = self.stats
        return s["cached_prompt_tokens"] / s["prompt_tokens"] if s.get("prompt_tokens") else None

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per endpoint: its URL, state, requests answered, failures and cooldowns, prompt and completion tokens."""
        return [
            {
                "url": r.url,
                "state": r.state(),
                "requests": r.served,
                "failures": r.failures,
                "cooldowns": r.cooldowns,
                "prompt_tokens": int(r.engine.stats["prompt_tokens"]),
                "completion_tokens": int(r.engine.stats["completion_tokens"]),
                "last_error": r.last_error,
            }
            for r in self.replicas
        ]

    def close(self) -> None:
        """Close every replica's HTTP client (the servers keep running)."""
        for r in self.replicas:
            r.engine.close()

    def __enter__(self) -> OpenAIPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

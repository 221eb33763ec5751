"""Tasks in flight on one engine, and flows that feed them as their answers come in.

A :class:`TaskScheduler` holds every task not yet answered. Each :meth:`~TaskScheduler.step` sends what
waits to be sent (the first attempts of new tasks and the retries and compressions of old ones alike, in
the order they came), waits for the next answers and judges each one
(:func:`~novelcraft.llm.attempts.judge_answer`). Engines that batch continuously (``open_stream()``: vLLM,
an OpenAI-compatible server) return answers as they finish, so a task's retry, or the next task of its
chain, is in the engine's batch while the others are still decoding; any other engine (or
``llm.scheduling: rounds``) answers in rounds: one ``generate`` call for everything pending
(:class:`RoundStream`).

:func:`run_flows` drives many independent chains of work through one scheduler. A *flow* is a generator
that yields a list of tasks, receives their outcomes once all are settled, yields its next tasks, and may
return further flows to start. The pending work of every flow shares the engine: while one book retries a
rejected summary, the others' next summaries and instructions are in the same batch, so the engine sees as
full batches as the dependencies allow (the steps of a chain can never be fewer than its length).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, TypeAlias

from ..runs import ResultStore, StoreGroup
from ..stats import StageStats
from .attempts import Outcome, Task, TaskState, judge_answer, task_digest
from .debug import DebugLog
from .types import Engine, LLMError, LLMRequest, LLMResponse, RequestStream

__all__ = ["Flow", "RoundStream", "TaskScheduler", "run_flows"]

log = logging.getLogger(__name__)

#: yields lists of tasks, is sent their outcomes (in order), returns the flows to start after it (or None).
Flow: TypeAlias = Generator[list[Task], list[Outcome], Sequence[Generator[list[Task], list[Outcome], Any]] | None]


class RoundStream:
    """Any engine as a :class:`~novelcraft.llm.types.RequestStream` that answers in rounds: :meth:`wait`
    sends what was added (at most ``chunk_size`` requests) in one ``generate`` call and returns its answers."""

    def __init__(self, engine: Engine, chunk_size: int | None = None) -> None:
        self.engine = engine
        self.chunk_size = chunk_size
        self._queue: list[LLMRequest] = []

    def add(self, requests: Sequence[LLMRequest]) -> None:
        """Queue ``requests`` for the next call."""
        self._queue.extend(requests)

    def wait(self) -> list[LLMResponse]:
        """Answer the queued requests (the first ``chunk_size`` of them) in one engine call."""
        if not self._queue:
            return []
        size = self.chunk_size or len(self._queue)
        batch, self._queue = self._queue[:size], self._queue[size:]
        responses = self.engine.generate(batch)
        if len(responses) != len(batch):
            raise LLMError(f"engine returned {len(responses)} answers for {len(batch)} requests", step="llm")
        return responses

    @property
    def in_flight(self) -> int:
        """Requests queued and not yet answered."""
        return len(self._queue)

    def close(self) -> None:
        """Forget the queued requests."""
        self._queue = []


class TaskScheduler:
    """Tasks in flight against one engine (see the module docstring).

    Arguments are :func:`novelcraft.llm.tasks.run_tasks`'s; ``chunk_size`` caps the requests in flight
    (in rounds: per engine call). Each stage's statistics get the time the engine spent while the stage had
    a request in flight (``seconds``), the span from its first request to its last answer
    (``wall_seconds``) and the steps that answered one of its requests (``rounds``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        attempts: int = 3,
        transport_attempts: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        store: ResultStore | StoreGroup | None = None,
        salt: str = "",
        engine_identity: str | None = None,
        stats: StageStats | Callable[[Task], StageStats] | None = None,
        debug: DebugLog | None = None,
        chunk_size: int | None = None,
        on_round: Callable[[int, int], None] | None = None,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> None:
        if stats is None or isinstance(stats, StageStats):
            one = stats if stats is not None else StageStats()
            self.stats_of: Callable[[Task], StageStats] = lambda task: one
        else:
            self.stats_of = stats
        self.engine = engine
        self.attempts = attempts
        self.transport_attempts = transport_attempts
        self.backoff = backoff_s
        self.max_backoff_s = max_backoff_s
        self.store = store
        self.salt = salt
        self.identity = engine_identity or str(getattr(engine, "name", type(engine).__name__))
        self.debug = debug or DebugLog(None)
        self.chunk_size = chunk_size
        self.on_round = on_round
        self.on_chunk = on_chunk
        self.rounds = 0
        self._queue: list[TaskState] = []  # to send
        self._flight: dict[str, tuple[TaskState, LLMRequest]] = {}  # sent, by request key
        self._stream: RequestStream | None = None
        self._first_sent: dict[int, float] = {}
        self._trouble = False

    @property
    def pending(self) -> int:
        """Tasks still waiting for an acceptable answer."""
        return len(self._queue) + len(self._flight)

    @property
    def continuous(self) -> bool:
        """Whether the engine answers continuously (else in rounds); known once the first request is sent."""
        return self._stream is not None and not isinstance(self._stream, RoundStream)

    def _open(self) -> RequestStream:
        if self._stream is None:
            opener = getattr(self.engine, "open_stream", None)
            stream = opener() if callable(opener) else None
            self._stream = stream if stream is not None else RoundStream(self.engine, self.chunk_size)
        return self._stream

    def close(self) -> None:
        """Abandon the requests in flight (the tasks stay pending: a later step sends them again)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._queue = [st for st, _ in self._flight.values()] + self._queue
        self._flight = {}

    def submit(self, tasks: Sequence[Task]) -> list[TaskState]:
        """Add ``tasks``; those the store holds are settled at once (no engine call). Returns their states."""
        out = []
        for task in tasks:
            digest = task_digest(task, self.identity, self.salt) if task.schema is not None else ""
            st = TaskState(task=task, digest=digest, messages=list(task.messages), context=task.context)
            cached = self.store.get(st.digest) if self.store is not None and task.schema is not None else None
            if cached is not None and task.schema is not None:
                self._from_store(st, cached)
            else:
                self._queue.append(st)
            out.append(st)
        return out

    def _from_store(self, st: TaskState, cached: dict[str, Any]) -> None:
        # a task that stayed invalid is stored too: the caller's fallback is decided again, with no call
        task = st.task
        assert task.schema is not None
        value = (
            None
            if cached.get("value") is None
            else task.schema.model_validate(cached["value"], context={"word_budgets": False})
        )
        st.done = Outcome(
            key=task.key,
            value=value,
            flagged=cached.get("flagged", False),
            flag_reason=cached.get("flag_reason"),
            attempts=cached.get("attempts", 0),
            compressions=cached.get("compressions", 0),
            error=cached.get("error") if value is None else None,
            from_store=True,
        )
        task_stats = self.stats_of(task)
        task_stats.reused += 1
        if value is None:
            task_stats.failed += 1
        elif st.done.flagged:
            task_stats.flagged += 1

    def _finish(self, st: TaskState, outcome: Outcome) -> dict[str, Any] | None:
        st.done = outcome
        if outcome.value is None:
            self.stats_of(st.task).failed += 1
        elif outcome.flagged:
            self.stats_of(st.task).flagged += 1
        if st.task.schema is None:
            return None
        return {
            "hash": st.digest,
            "key": outcome.key,
            "value": None if outcome.value is None else outcome.value.model_dump(mode="json"),
            "error": outcome.error,
            "flagged": outcome.flagged,
            "flag_reason": outcome.flag_reason,
            "attempts": outcome.attempts,
            "compressions": outcome.compressions,
        }

    def step(self) -> None:
        """Send every task waiting to be sent, wait for the next answers (in rounds: the whole batch), judge
        them, and store the settled ones. A transport failure that outlasts ``transport_attempts`` raises
        :class:`LLMError` naming the task (what was settled before is stored)."""
        if not self.pending:
            return
        stream = self._open()
        if self._queue:
            self._send(stream)
        t0 = time.perf_counter()
        involved = self._stages_of(st for st, _ in self._flight.values())
        try:
            responses = stream.wait()
        finally:
            end = time.perf_counter()
            for s in involved:
                s.seconds += end - t0
        if not responses:
            raise LLMError(f"the engine returned no answer with {len(self._flight)} requests in flight", step="llm")
        self._judge(responses)
        for s in involved:
            s.wall_seconds = round(end - self._first_sent.get(id(s), t0), 3)
        if self._trouble and self._queue:
            log.warning("LLM transport errors; retrying in %.1f s", self.backoff)
            time.sleep(self.backoff)
            self.backoff = min(self.max_backoff_s, self.backoff * 2 if self.backoff else 0)
        self._trouble = False

    def _stages_of(self, states: Iterable[TaskState]) -> list[StageStats]:
        """The statistics of the stages ``states`` belong to, each once."""
        return list({id(s): s for s in (self.stats_of(st.task) for st in states)}.values())

    def _send(self, stream: RequestStream) -> None:
        room = len(self._queue)  # in rounds the stream itself cuts the chunks
        if self.continuous and self.chunk_size is not None:
            room = max(0, self.chunk_size - len(self._flight))
        sending, self._queue = self._queue[:room], self._queue[room:]
        if not sending:
            return
        self.rounds += 1
        now = time.perf_counter()
        requests = []
        for st in sending:
            key = st.task.key
            while key in self._flight:  # the same key twice in flight: answers are matched by key
                key += "+"
            req = LLMRequest(key=key, messages=tuple(st.messages), schema=st.task.schema, max_tokens=st.task.max_tokens)
            self._flight[key] = (st, req)
            requests.append(req)
            task_stats = self.stats_of(st.task)
            if id(task_stats) not in self._first_sent:
                self._first_sent[id(task_stats)] = now
        for s in self._stages_of(sending):
            s.rounds += 1
        if self.on_round:
            self.on_round(self.rounds, self.pending)
        stream.add(requests)

    def _judge(self, responses: list[LLMResponse]) -> None:
        finished: list[dict[str, Any]] = []
        try:
            for resp in responses:
                if resp.key not in self._flight:
                    raise LLMError(f"the engine answered {resp.key!r}, which was not asked", step="llm")
                st, req = self._flight.pop(resp.key)
                self.debug.write(req, resp)
                task_stats = self.stats_of(st.task)
                task_stats.calls += 1
                task_stats.prompt_tokens += resp.prompt_tokens
                task_stats.completion_tokens += resp.completion_tokens
                if resp.error is not None:
                    task_stats.transport_errors += 1
                    st.transport_failures += 1
                    self._trouble = True
                    if st.transport_failures >= self.transport_attempts:
                        raise LLMError(
                            f"{st.task.key}: no answer after {st.transport_failures} tries: {resp.error}", step="llm"
                        )
                    self._queue.append(st)
                    continue
                rec = judge_answer(st, resp, self.attempts, task_stats, self._finish)
                if rec is not None:
                    finished.append(rec)
                if st.done is None:
                    self._queue.append(st)  # its retry or compression
        finally:
            if self.store is not None:
                self.store.put_many(finished)
        if self.on_chunk:
            self.on_chunk(len(responses), sum(r.completion_tokens for r in responses))


def run_flows(scheduler: TaskScheduler, flows: Sequence[Flow]) -> None:
    """Run ``flows`` to their end through ``scheduler``: the engine holds the pending tasks of every flow; a
    flow resumes (in the order the answers come) once all the tasks it yielded are settled, and the flows it
    returns start at once. An exception raised by a flow stops the run (settled answers are stored, the
    requests in flight are abandoned)."""
    waiting: list[tuple[Flow, list[TaskState]]] = []

    def advance(flow: Flow, outcomes: list[Outcome] | None) -> None:
        while True:
            try:
                tasks = next(flow) if outcomes is None else flow.send(outcomes)
            except StopIteration as stop:
                for child in stop.value or ():
                    advance(child, None)
                return
            states = scheduler.submit(tasks)
            if any(st.done is None for st in states):
                waiting.append((flow, states))
                return
            outcomes = [st.done for st in states if st.done is not None]  # settled by the store: no round

    try:
        for flow in flows:
            advance(flow, None)
        while waiting:
            scheduler.step()
            ready = [(f, sts) for f, sts in waiting if all(st.done is not None for st in sts)]
            waiting[:] = [(f, sts) for f, sts in waiting if any(st.done is None for st in sts)]
            for flow, states in ready:
                advance(flow, [st.done for st in states if st.done is not None])
    finally:
        scheduler.close()

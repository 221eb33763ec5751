"""Rounds of engine calls over tasks in flight, and flows that feed them as their answers come in.

A :class:`TaskScheduler` holds every task not yet answered. :meth:`~TaskScheduler.round` sends all of them
(the first attempts of new tasks and the retries and compressions of old ones alike) to the engine as one
batch, in the order they were submitted, and judges each answer (:func:`~novelcraft.llm.attempts.judge_answer`).

:func:`run_flows` drives many independent chains of work through one scheduler. A *flow* is a generator
that yields a list of tasks, receives their outcomes once all are settled, yields its next tasks, and may
return further flows to start. Every round carries the pending work of every flow: while one book retries a
rejected summary, the others' next summaries and instructions are in the same batch, so the engine sees as
few, as full batches as the dependencies allow (the rounds of a chain can never be fewer than its length).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeAlias

from ..runs import ResultStore, StoreGroup
from ..stats import StageStats
from .attempts import Outcome, Task, TaskState, judge_answer, task_digest
from .debug import DebugLog
from .types import Engine, LLMError, LLMRequest

__all__ = ["Flow", "TaskScheduler", "run_flows"]

log = logging.getLogger(__name__)

#: yields lists of tasks, is sent their outcomes (in order), returns the flows to start after it (or None).
Flow: TypeAlias = Generator[list[Task], list[Outcome], Sequence[Generator[list[Task], list[Outcome], Any]] | None]


class TaskScheduler:
    """Tasks in flight against one engine, sent in rounds (see the module docstring).

    Arguments are :func:`novelcraft.llm.tasks.run_tasks`'s. Each stage's statistics get the time of every
    round in which it had a request (``seconds``) and the span from its first round's start to its last
    round's end (``wall_seconds``).
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
        self._pending: list[TaskState] = []
        self._first_round: dict[int, float] = {}

    @property
    def pending(self) -> int:
        """Tasks still waiting for an acceptable answer."""
        return len(self._pending)

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
                self._pending.append(st)
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

    def round(self) -> None:
        """Send every pending task once (in chunks of ``chunk_size``), judge the answers, store the settled
        ones after each chunk. A transport failure that outlasts ``transport_attempts`` raises
        :class:`LLMError` naming the task (what was settled before is stored)."""
        pending = self._pending
        if not pending:
            return
        self.rounds += 1
        t0 = time.perf_counter()
        involved = list({id(s): s for s in (self.stats_of(st.task) for st in pending)}.values())
        for s in involved:
            s.rounds += 1
            self._first_round.setdefault(id(s), t0)
        if self.on_round:
            self.on_round(self.rounds, len(pending))
        size = self.chunk_size or len(pending)
        transport_trouble = False
        try:
            for lo in range(0, len(pending), size):
                transport_trouble |= self._send(pending[lo : lo + size])
        finally:
            end = time.perf_counter()
            for s in involved:
                s.seconds += end - t0
                s.wall_seconds = round(end - self._first_round[id(s)], 3)
            self._pending = [st for st in self._pending if st.done is None]
        if transport_trouble and self._pending:
            log.warning("LLM transport errors; retrying in %.1f s", self.backoff)
            time.sleep(self.backoff)
            self.backoff = min(self.max_backoff_s, self.backoff * 2 if self.backoff else 0)

    def _send(self, chunk: list[TaskState]) -> bool:
        requests = [
            LLMRequest(
                key=st.task.key, messages=tuple(st.messages), schema=st.task.schema, max_tokens=st.task.max_tokens
            )
            for st in chunk
        ]
        responses = self.engine.generate(requests)
        if len(responses) != len(requests):
            raise LLMError(f"engine returned {len(responses)} answers for {len(requests)} requests", step="llm")
        finished: list[dict[str, Any]] = []
        trouble = False
        try:
            for st, req, resp in zip(chunk, requests, responses):
                self.debug.write(req, resp)
                task_stats = self.stats_of(st.task)
                task_stats.calls += 1
                task_stats.prompt_tokens += resp.prompt_tokens
                task_stats.completion_tokens += resp.completion_tokens
                if resp.error is not None:
                    task_stats.transport_errors += 1
                    st.transport_failures += 1
                    trouble = True
                    if st.transport_failures >= self.transport_attempts:
                        raise LLMError(
                            f"{st.task.key}: no answer after {st.transport_failures} tries: {resp.error}", step="llm"
                        )
                    continue
                rec = judge_answer(st, resp, self.attempts, task_stats, self._finish)
                if rec is not None:
                    finished.append(rec)
        finally:
            if self.store is not None:
                self.store.put_many(finished)
        if self.on_chunk:
            self.on_chunk(len(chunk), sum(r.completion_tokens for r in responses))
        return trouble


def run_flows(scheduler: TaskScheduler, flows: Sequence[Flow]) -> None:
    """Run ``flows`` to their end through ``scheduler``: each round carries the pending tasks of every flow;
    a flow resumes (in the order the flows started) once all the tasks it yielded are settled, and the flows
    it returns start at once. An exception raised by a flow stops the run (settled answers are stored)."""
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

    for flow in flows:
        advance(flow, None)
    while waiting:
        scheduler.round()
        ready = [(f, sts) for f, sts in waiting if all(st.done is not None for st in sts)]
        waiting[:] = [(f, sts) for f, sts in waiting if any(st.done is None for st in sts)]
        for flow, states in ready:
            advance(flow, [st.done for st in states if st.done is not None])

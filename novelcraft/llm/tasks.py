"""Schema-constrained calls with validation, feedback retries and compress-and-retry — for every backend.

A :class:`Task` is one item a stage needs from the LLM (a world context, the boundaries of one chapter, a
summary...). :func:`run_tasks` sends all pending tasks to the engine as one batch per round; each answer
is parsed against the task's schema and passed through the task's gate:

* invalid JSON, schema errors or a failed gate (``Verdict.retry``) → the error is fed back to the model
  and the task is asked again, at most ``retry.attempts`` answers in all;
* over budget (a word budget of the schema, or ``Verdict.compress`` from the gate) → a compress request,
  at most ``compress_attempts`` times; then the last answer is kept and flagged;
* transport errors → retried with exponential backoff, then :class:`~novelcraft.llm.types.LLMError`.

A task with ``schema=None`` asks for free text (a scene): its ``parse`` hook turns the answer into a value
and a verdict, ``revise`` rebuilds the prompt for the next attempt, and ``keep_best`` keeps the best
rejected answer (flagged) when the attempts run out.

Finished results are handed to a :class:`~novelcraft.runs.ResultStore` as each round completes, so a killed
run loses at most one round and a re-run answers finished tasks from the store without calling the engine —
a task that stayed invalid included (stored with its error, so the caller's fallback is taken again with no
engine call).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from ..runs import ResultStore, StoreGroup
from ..stats import StageStats
from .answers import FeedbackBuilder, Gate, Reviser, TextParser, Verdict, default_feedback, parse_answer
from .debug import DebugLog
from .types import Engine, LLMError, LLMRequest, LLMResponse

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Task:
    """One item to obtain. ``messages`` should start with the parts shared across tasks.

    Structured tasks give a ``schema``; free-text tasks (``schema=None``) give ``parse``. ``revise``
    replaces the default retry (the rejected answer and the feedback appended to the conversation);
    ``keep_best(old, new)`` -> True when ``new`` beats ``old``: with it, a task whose attempts run out keeps
    its best rejected answer, flagged, instead of failing.
    """

    key: str
    messages: list[dict[str, str]]
    schema: type[BaseModel] | None
    max_tokens: int
    gate: Gate | None = None
    feedback: FeedbackBuilder | None = None
    compress_attempts: int = 3
    parse: TextParser | None = None
    revise: Reviser | None = None
    keep_best: Callable[[Any, Any], bool] | None = None
    context: Any = None

    def __post_init__(self) -> None:
        if self.schema is None and self.parse is None:
            raise ValueError(f"task {self.key}: a free-text task needs parse")


@dataclasses.dataclass
class Outcome:
    """The result of a task. ``value`` is None only when ``error`` is set.

    ``response`` is the engine's answer that was accepted (None when it came from the store) and
    ``context`` what the task's ``revise`` recorded with the prompt of that answer.
    """

    key: str
    value: Any
    flagged: bool = False
    flag_reason: str | None = None
    attempts: int = 0
    compressions: int = 0
    error: str | None = None
    from_store: bool = False
    response: LLMResponse | None = None
    context: Any = None

    @property
    def ok(self) -> bool:
        """Whether the task has a value."""
        return self.value is not None


# --------------------------------------------------------------------------- persistence


def task_digest(task: Task, engine_identity: str, salt: str = "") -> str:
    """Content hash of everything that determines an answer: prompt, schema, limits, engine, salt."""
    if task.schema is None:
        raise ValueError(f"task {task.key}: only structured tasks have a digest (free-text values are not stored)")
    payload = {
        "messages": task.messages,
        "schema": task.schema.__name__,
        "schema_json": task.schema.model_json_schema(),
        "max_tokens": task.max_tokens,
        "compress_attempts": task.compress_attempts,
        "engine": engine_identity,
        "salt": salt,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# --------------------------------------------------------------------------- the loop


@dataclasses.dataclass
class _State:
    task: Task
    digest: str
    messages: list[dict[str, str]]
    context: Any = None
    answers: int = 0
    compressions: int = 0
    transport_failures: int = 0
    last_value: Any = None
    last_verdict: Verdict | None = None
    best: tuple[Any, LLMResponse, Any, Verdict] | None = None
    done: Outcome | None = None


def run_tasks(
    engine: Engine,
    tasks: Sequence[Task],
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
) -> list[Outcome]:
    """Obtain every task's validated value, batching all pending tasks into one engine call per round.

    Returns outcomes in task order. A task that exhausts its answer attempts gets ``error`` set (the
    caller decides whether that fails the run or falls back); a transport failure that outlasts
    ``transport_attempts`` raises :class:`LLMError` naming the task, after finished results are stored.
    ``chunk_size`` caps the requests per engine call (results are stored after each chunk; ``on_chunk``
    hears (requests answered, completion tokens) after each: progress within a long round). Only
    structured tasks are stored (free-text values are the caller's to checkpoint).

    Tasks of several stages can share one call (a scene's summary and instruction, whose prompts share a
    prefix): ``store`` is then a :class:`~novelcraft.runs.StoreGroup` and ``stats`` a function giving each
    task's stage statistics.
    """
    stats_of: Callable[[Task], StageStats]
    if stats is None or isinstance(stats, StageStats):
        one = stats if stats is not None else StageStats()
        stats_of = lambda task: one  # noqa: E731 - one stage's statistics for every task
    else:
        stats_of = stats
    all_stats = list({id(s): s for s in (stats_of(t) for t in tasks)}.values())
    identity = engine_identity or str(getattr(engine, "name", type(engine).__name__))
    debug = debug or DebugLog(None)
    t0 = time.perf_counter()
    states: list[_State] = []
    for task in tasks:
        digest = task_digest(task, identity, salt) if task.schema is not None else ""
        st = _State(task=task, digest=digest, messages=list(task.messages), context=task.context)
        cached = store.get(st.digest) if store and task.schema is not None else None
        if cached is not None and task.schema is not None:
            # a task that stayed invalid is stored too: the caller's fallback is decided again, with no call
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
            task_stats = stats_of(task)
            task_stats.reused += 1
            if value is None:
                task_stats.failed += 1
            elif st.done.flagged:
                task_stats.flagged += 1
        states.append(st)

    def finish(st: _State, outcome: Outcome) -> dict[str, Any] | None:
        st.done = outcome
        if outcome.value is None:
            stats_of(st.task).failed += 1
        elif outcome.flagged:
            stats_of(st.task).flagged += 1
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

    backoff = backoff_s
    round_no = 0
    try:
        while True:
            pending = [st for st in states if st.done is None]
            if not pending:
                break
            round_no += 1
            for s in {id(stats_of(st.task)): stats_of(st.task) for st in pending}.values():
                s.rounds += 1
            if on_round:
                on_round(round_no, len(pending))
            size = chunk_size or len(pending)
            transport_trouble = False
            for lo in range(0, len(pending), size):
                chunk = pending[lo : lo + size]
                requests = [
                    LLMRequest(
                        key=st.task.key,
                        messages=tuple(st.messages),
                        schema=st.task.schema,
                        max_tokens=st.task.max_tokens,
                    )
                    for st in chunk
                ]
                responses = engine.generate(requests)
                if len(responses) != len(requests):
                    raise LLMError(f"engine returned {len(responses)} answers for {len(requests)} requests", step="llm")
                finished: list[dict[str, Any]] = []
                for st, req, resp in zip(chunk, requests, responses):
                    debug.write(req, resp)
                    task_stats = stats_of(st.task)
                    task_stats.calls += 1
                    task_stats.prompt_tokens += resp.prompt_tokens
                    task_stats.completion_tokens += resp.completion_tokens
                    if resp.error is not None:
                        task_stats.transport_errors += 1
                        st.transport_failures += 1
                        transport_trouble = True
                        if st.transport_failures >= transport_attempts:
                            raise LLMError(
                                f"{st.task.key}: no answer after {st.transport_failures} tries: {resp.error}",
                                step="llm",
                            )
                        continue
                    rec = _judge(st, resp, attempts, task_stats, finish)
                    if rec is not None:
                        finished.append(rec)
                if store is not None:
                    store.put_many(finished)
                if on_chunk:
                    on_chunk(len(chunk), sum(r.completion_tokens for r in responses))
            if transport_trouble and any(st.done is None for st in states):
                log.warning("LLM transport errors; retrying in %.1f s", backoff)
                time.sleep(backoff)
                backoff = min(max_backoff_s, backoff * 2 if backoff else 0)
    finally:
        for s in all_stats:
            s.seconds += time.perf_counter() - t0
    # every state is done here: the loop ends only when none is pending
    return [st.done for st in states if st.done is not None]


def _parse(task: Task, resp: LLMResponse) -> tuple[Any, Verdict]:
    if task.parse is not None:
        return task.parse(resp)
    assert task.schema is not None
    value, verdict = parse_answer(resp.text, task.schema)
    if resp.truncated and value is None:
        verdict = Verdict.retry(
            f"the answer was cut off at the {task.max_tokens}-token limit before the JSON was complete; be brief"
        )
    return value, verdict


def _judge(st: _State, resp: LLMResponse, attempts: int, stats: StageStats, finish: Callable) -> dict[str, Any] | None:
    task = st.task
    st.answers += 1
    value, verdict = _parse(task, resp)
    if value is not None and verdict.kind == "ok" and task.gate is not None:
        verdict = task.gate(value)
    if verdict.kind == "ok":
        return finish(
            st,
            Outcome(
                task.key, value, attempts=st.answers, compressions=st.compressions, response=resp, context=st.context
            ),
        )
    feedback = task.feedback or default_feedback
    if verdict.kind == "compress" and value is not None and task.schema is not None:
        st.last_value, st.last_verdict = value, verdict
        if st.compressions >= task.compress_attempts:
            return finish(
                st,
                Outcome(
                    task.key,
                    value,
                    flagged=True,
                    flag_reason=f"over budget after {st.compressions} compressions: {verdict.message}",
                    attempts=st.answers,
                    compressions=st.compressions,
                    response=resp,
                    context=st.context,
                ),
            )
        st.compressions += 1
        stats.compressions += 1
        st.messages = list(task.messages) + [
            {"role": "assistant", "content": value.model_dump_json()},
            {"role": "user", "content": feedback("compress", verdict.message)},
        ]
        return None
    # retry
    if task.keep_best is not None and value is not None and (st.best is None or task.keep_best(st.best[0], value)):
        st.best = (value, resp, st.context, verdict)
    if st.answers >= attempts + st.compressions:
        if st.best is not None:
            best, best_resp, best_context, best_verdict = st.best
            return finish(
                st,
                Outcome(
                    task.key,
                    best,
                    flagged=True,
                    flag_reason=f"{best_verdict.message} (after {st.answers} attempts)",
                    attempts=st.answers,
                    compressions=st.compressions,
                    response=best_resp,
                    context=best_context,
                ),
            )
        if st.last_value is not None:
            # A compression made things invalid: keep the last valid (over-budget) answer, flagged.
            return finish(
                st,
                Outcome(
                    task.key,
                    st.last_value,
                    flagged=True,
                    flag_reason=f"over budget ({st.last_verdict.message if st.last_verdict else ''}); "
                    f"compression failed: {verdict.message}",
                    attempts=st.answers,
                    compressions=st.compressions,
                ),
            )
        return finish(
            st, Outcome(task.key, None, attempts=st.answers, compressions=st.compressions, error=verdict.message)
        )
    stats.retries += 1
    if task.revise is not None:
        st.messages, st.context = task.revise(verdict, value)
    else:
        st.messages = list(task.messages) + [
            {"role": "assistant", "content": resp.text[:4000]},
            {"role": "user", "content": feedback("retry", verdict.message)},
        ]
    return None


def engine_judge(
    engine: Engine, *, max_tokens: int = 800, attempts: int = 3
) -> Callable[[list[dict[str, str]], type[BaseModel]], BaseModel]:
    """A ``judge(messages, schema) -> value`` callable over any engine (schema-constrained, validated,
    retried with feedback); raises :class:`LLMError` when no valid answer comes within ``attempts``."""

    def judge(messages: list[dict[str, str]], schema: type[BaseModel]) -> BaseModel:
        [out] = run_tasks(
            engine,
            [Task(key="judge", messages=list(messages), schema=schema, max_tokens=max_tokens)],
            attempts=attempts,
        )
        if out.value is None:
            raise LLMError(f"judge: no valid {schema.__name__} after {out.attempts} answers: {out.error}", step="judge")
        return out.value

    return judge

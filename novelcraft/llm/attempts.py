"""One task's attempts: what a stage asks the LLM for (:class:`Task`), what it got (:class:`Outcome`), and
how each answer is judged - parsed against the schema, passed through the gate, then accepted, fed back for a
retry, or sent back to be compressed (:func:`judge_answer`). The rounds that send answers to the engine are
:mod:`novelcraft.llm.scheduler`'s; :mod:`novelcraft.llm.tasks` is the public entry point."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..stats import StageStats
from .answers import FeedbackBuilder, Gate, Reviser, TextParser, Verdict, default_feedback, parse_answer
from .types import LLMResponse

__all__ = ["Outcome", "Task", "TaskState", "judge_answer", "task_digest"]


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


@dataclasses.dataclass
class TaskState:
    """A task in flight: its prompt for the next attempt and what its answers so far left."""

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


def judge_answer(
    st: TaskState, resp: LLMResponse, attempts: int, stats: StageStats, finish: Callable
) -> dict[str, Any] | None:
    """Judge one answer to ``st``: accepted (``finish`` is called with the outcome and its return value
    returned), or the state is set up for its next attempt (retry with feedback, or compress) and None is
    returned."""
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

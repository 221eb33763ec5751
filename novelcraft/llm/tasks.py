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

from collections.abc import Callable, Sequence

from pydantic import BaseModel

from ..runs import ResultStore, StoreGroup
from ..stats import StageStats
from .answers import Verdict
from .attempts import Outcome, Task, task_digest
from .debug import DebugLog
from .scheduler import TaskScheduler
from .types import Engine, LLMError

__all__ = ["DebugLog", "Outcome", "Task", "Verdict", "engine_judge", "run_tasks", "task_digest"]


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
    """Obtain every task's validated value, all pending tasks in the engine at once (in rounds, or
    continuously where the engine batches continuously: :mod:`novelcraft.llm.scheduler`).

    Returns outcomes in task order. A task that exhausts its answer attempts gets ``error`` set (the
    caller decides whether that fails the run or falls back); a transport failure that outlasts
    ``transport_attempts`` raises :class:`LLMError` naming the task, after finished results are stored.
    ``chunk_size`` caps the requests in flight (in rounds: per engine call); results are stored as answers
    come, and ``on_chunk`` hears (requests answered, completion tokens) each time: progress within a long
    batch. Only
    structured tasks are stored (free-text values are the caller's to checkpoint).

    Tasks of several stages can share one call (a scene's summary and instruction, whose prompts share a
    prefix): ``store`` is then a :class:`~novelcraft.runs.StoreGroup` and ``stats`` a function giving each
    task's stage statistics.
    """
    scheduler = TaskScheduler(
        engine,
        attempts=attempts,
        transport_attempts=transport_attempts,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        store=store,
        salt=salt,
        engine_identity=engine_identity,
        stats=stats,
        debug=debug,
        chunk_size=chunk_size,
        on_round=on_round,
        on_chunk=on_chunk,
    )
    states = scheduler.submit(tasks)
    try:
        while scheduler.pending:
            scheduler.step()
    finally:
        scheduler.close()
    # every state is settled here: the loop ends only when none is pending
    return [st.done for st in states if st.done is not None]


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

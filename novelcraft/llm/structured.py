"""Schema-constrained calls with validation, feedback retries and compress-and-retry — for every backend.

A :class:`Task` is one item a stage needs from the LLM (a world context, the boundaries of one chapter, a
summary...). :func:`run_tasks` sends all pending tasks to the engine as one batch per round; each answer
is parsed against the task's schema and passed through the task's gate:

* invalid JSON, schema errors or a failed gate (``Verdict.retry``) → the error is fed back to the model
  and the task is asked again, at most ``retry.attempts`` answers in all;
* over budget (a word budget of the schema, or ``Verdict.compress`` from the gate) → a compress request,
  at most ``compress_attempts`` times; then the last answer is kept and flagged;
* transport errors → retried with exponential backoff, then :class:`~novelcraft.llm.engine.LLMError`.

Finished results are handed to a :class:`ResultStore` as each round completes, so a killed run loses at
most one round and a re-run answers finished tasks from the store without calling the engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from pydantic import BaseModel, ValidationError

from .engine import Engine, LLMError, LLMRequest, LLMResponse

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a gate says of a parsed answer."""

    kind: str  # "ok" | "retry" | "compress"
    message: str = ""

    @classmethod
    def ok(cls) -> "Verdict":
        return cls("ok")

    @classmethod
    def retry(cls, message: str) -> "Verdict":
        return cls("retry", message)

    @classmethod
    def compress(cls, message: str) -> "Verdict":
        return cls("compress", message)


Gate = Callable[[BaseModel], Verdict]


def token_budget_gate(count: Callable[[str], int], budget_tokens: int, what: str, render: Callable[[Any], str] | None = None) -> Gate:
    """A gate asking for compression while ``render(value)`` is over ``budget_tokens`` (``count`` tokens)."""
    render = render or (lambda value: value.render())

    def gate(value: Any) -> Verdict:
        n = count(render(value))
        if n <= budget_tokens:
            return Verdict.ok()
        return Verdict.compress(f"the rendered {what} is {n} tokens; the budget is {budget_tokens}")

    return gate
FeedbackBuilder = Callable[[str, str], str]
"""(kind 'retry'|'compress', message) -> the user turn that asks for a corrected answer."""


@dataclasses.dataclass
class Task:
    """One structured item to obtain. ``messages`` should start with the parts shared across tasks."""

    key: str
    messages: list[dict[str, str]]
    schema: type[BaseModel]
    max_tokens: int
    gate: Gate | None = None
    feedback: FeedbackBuilder | None = None
    compress_attempts: int = 3


@dataclasses.dataclass
class Outcome:
    """The result of a task. ``value`` is None only when ``error`` is set."""

    key: str
    value: BaseModel | None
    flagged: bool = False
    flag_reason: str | None = None
    attempts: int = 0
    compressions: int = 0
    error: str | None = None
    from_store: bool = False

    @property
    def ok(self) -> bool:
        return self.value is not None


@dataclasses.dataclass
class CallStats:
    """Counters of one stage."""

    calls: int = 0
    rounds: int = 0
    retries: int = 0
    compressions: int = 0
    flagged: int = 0
    failed: int = 0
    reused: int = 0
    transport_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: "CallStats") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["seconds"] = round(d["seconds"], 3)
        return d


def default_feedback(kind: str, message: str) -> str:
    if kind == "compress":
        return (
            f"Your answer is too long: {message}. Rewrite the same JSON object, keeping every field and the "
            "facts that matter most, but shorter. Answer with the JSON object only."
        )
    return f"Your answer was rejected: {message}. Answer again with a corrected JSON object only."


# --------------------------------------------------------------------------- parsing


def _extract_json(text: str) -> str:
    """The outermost JSON object of an answer (models sometimes wrap it in prose or a code fence)."""
    start = text.find("{")
    end = text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def _word_budget_errors(exc: ValidationError) -> bool:
    errors = exc.errors()
    return bool(errors) and all("words, budget is" in str(e.get("msg", "")) for e in errors)


def parse_answer(text: str, schema: type[BaseModel]) -> tuple[BaseModel | None, Verdict]:
    """Parse and validate one answer. Word-budget overruns give a value *and* a compress verdict."""
    raw = _extract_json(text.strip())
    try:
        data = json.loads(raw)
    except ValueError as exc:
        snippet = text.strip()[:80].replace("\n", " ")
        return None, Verdict.retry(f"the answer is not valid JSON ({exc.msg} at char {exc.pos}; it began {snippet!r})")
    try:
        return schema.model_validate(data), Verdict.ok()
    except ValidationError as exc:
        if _word_budget_errors(exc):
            value = schema.model_validate(data, context={"word_budgets": False})
            msg = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            return value, Verdict.compress(msg)
        msgs = []
        for e in exc.errors()[:6]:
            loc = ".".join(str(x) for x in e["loc"]) or "(object)"
            msgs.append(f"{loc}: {str(e['msg']).removeprefix('Value error, ')}")
        return None, Verdict.retry("; ".join(msgs))


# --------------------------------------------------------------------------- persistence


class ResultStore:
    """Append-only JSONL of finished task results, keyed by a content hash of the task.

    A line is appended and flushed as soon as a task finishes; a torn last line (killed mid-write) is
    ignored on load, and the last line of a key wins, so resuming never duplicates work or results.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._data: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self._drop_torn_tail()
            with self.path.open("r", encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict) and "hash" in rec:
                        self._data[rec["hash"]] = rec

    def _drop_torn_tail(self) -> None:
        # A line cut by a kill has no newline; appending after it would glue the next record onto it.
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def get(self, digest: str) -> dict[str, Any] | None:
        return self._data.get(digest)

    def put_many(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
                self._data[rec["hash"]] = rec
            f.flush()
            os.fsync(f.fileno())

    def __len__(self) -> int:
        return len(self._data)


def task_digest(task: Task, engine_identity: str, salt: str = "") -> str:
    """Content hash of everything that determines an answer: prompt, schema, limits, engine, salt."""
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


class DebugLog:
    """Appends every prompt and answer to a JSONL file (``llm.debug_log: true``)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None

    def write(self, request: LLMRequest, response: LLMResponse) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rec = {
            "key": request.key,
            "messages": list(request.messages),
            "schema": request.schema.__name__ if request.schema else None,
            "max_tokens": request.max_tokens,
            "answer": response.text,
            "error": response.error,
            "finish_reason": response.finish_reason,
            "prompt_tokens": response.prompt_tokens,
            "completion_tokens": response.completion_tokens,
            "seconds": round(response.seconds, 3),
        }
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- the loop


@dataclasses.dataclass
class _State:
    task: Task
    digest: str
    messages: list[dict[str, str]]
    answers: int = 0
    compressions: int = 0
    transport_failures: int = 0
    last_value: BaseModel | None = None
    last_verdict: Verdict | None = None
    done: Outcome | None = None


def run_tasks(
    engine: Engine,
    tasks: Sequence[Task],
    *,
    attempts: int = 3,
    transport_attempts: int = 3,
    backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
    store: ResultStore | None = None,
    salt: str = "",
    engine_identity: str | None = None,
    stats: CallStats | None = None,
    debug: DebugLog | None = None,
    chunk_size: int | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Obtain every task's validated value, batching all pending tasks into one engine call per round.

    Returns outcomes in task order. A task that exhausts its answer attempts gets ``error`` set (the
    caller decides whether that fails the run or falls back); a transport failure that outlasts
    ``transport_attempts`` raises :class:`LLMError` naming the task, after finished results are stored.
    ``chunk_size`` caps the requests per engine call (results are stored after each chunk).
    """
    stats = stats if stats is not None else CallStats()
    identity = engine_identity or getattr(engine, "name", type(engine).__name__)
    debug = debug or DebugLog(None)
    t0 = time.perf_counter()
    states: list[_State] = []
    for task in tasks:
        st = _State(task=task, digest=task_digest(task, identity, salt), messages=list(task.messages))
        cached = store.get(st.digest) if store else None
        if cached is not None:
            value = task.schema.model_validate(cached["value"], context={"word_budgets": False})
            st.done = Outcome(
                key=task.key,
                value=value,
                flagged=cached.get("flagged", False),
                flag_reason=cached.get("flag_reason"),
                attempts=cached.get("attempts", 0),
                compressions=cached.get("compressions", 0),
                from_store=True,
            )
            stats.reused += 1
        states.append(st)

    def finish(st: _State, outcome: Outcome) -> dict[str, Any] | None:
        st.done = outcome
        if outcome.value is None:
            stats.failed += 1
            return None
        if outcome.flagged:
            stats.flagged += 1
        return {
            "hash": st.digest,
            "key": outcome.key,
            "value": outcome.value.model_dump(mode="json"),
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
            stats.rounds += 1
            if on_round:
                on_round(round_no, len(pending))
            size = chunk_size or len(pending)
            transport_trouble = False
            for lo in range(0, len(pending), size):
                chunk = pending[lo : lo + size]
                requests = [
                    LLMRequest(key=st.task.key, messages=tuple(st.messages), schema=st.task.schema, max_tokens=st.task.max_tokens)
                    for st in chunk
                ]
                responses = engine.generate(requests)
                if len(responses) != len(requests):
                    raise LLMError(f"engine returned {len(responses)} answers for {len(requests)} requests", step="llm")
                finished: list[dict[str, Any]] = []
                for st, req, resp in zip(chunk, requests, responses):
                    debug.write(req, resp)
                    stats.calls += 1
                    stats.prompt_tokens += resp.prompt_tokens
                    stats.completion_tokens += resp.completion_tokens
                    if resp.error is not None:
                        stats.transport_errors += 1
                        st.transport_failures += 1
                        transport_trouble = True
                        if st.transport_failures >= transport_attempts:
                            raise LLMError(
                                f"{st.task.key}: no answer after {st.transport_failures} tries: {resp.error}", step="llm"
                            )
                        continue
                    rec = _judge(st, resp, attempts, stats, finish)
                    if rec is not None:
                        finished.append(rec)
                if store is not None:
                    store.put_many(finished)
            if transport_trouble and any(st.done is None for st in states):
                log.warning("LLM transport errors; retrying in %.1f s", backoff)
                time.sleep(backoff)
                backoff = min(max_backoff_s, backoff * 2 if backoff else 0)
    finally:
        stats.seconds += time.perf_counter() - t0
    return [st.done for st in states]  # type: ignore[misc]


def _judge(st: _State, resp: LLMResponse, attempts: int, stats: CallStats, finish: Callable) -> dict[str, Any] | None:
    task = st.task
    st.answers += 1
    value, verdict = parse_answer(resp.text, task.schema)
    if value is not None and verdict.kind == "ok" and task.gate is not None:
        verdict = task.gate(value)
    if resp.truncated and value is None:
        verdict = Verdict.retry(
            f"the answer was cut off at the {task.max_tokens}-token limit before the JSON was complete; be brief"
        )
    if verdict.kind == "ok":
        return finish(st, Outcome(task.key, value, attempts=st.answers, compressions=st.compressions))
    feedback = task.feedback or default_feedback
    if verdict.kind == "compress" and value is not None:
        st.last_value, st.last_verdict = value, verdict
        if st.compressions >= task.compress_attempts:
            return finish(
                st,
                Outcome(
                    task.key, value, flagged=True, flag_reason=f"over budget after {st.compressions} compressions: {verdict.message}",
                    attempts=st.answers, compressions=st.compressions,
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
    if st.answers >= attempts + st.compressions:
        if st.last_value is not None:
            # A compression made things invalid: keep the last valid (over-budget) answer, flagged.
            return finish(
                st,
                Outcome(
                    task.key, st.last_value, flagged=True,
                    flag_reason=f"over budget ({st.last_verdict.message if st.last_verdict else ''}); compression failed: {verdict.message}",
                    attempts=st.answers, compressions=st.compressions,
                ),
            )
        finish(st, Outcome(task.key, None, attempts=st.answers, compressions=st.compressions, error=verdict.message))
        return None
    stats.retries += 1
    st.messages = list(task.messages) + [
        {"role": "assistant", "content": resp.text[:4000]},
        {"role": "user", "content": feedback("retry", verdict.message)},
    ]
    return None



def engine_judge(engine: Engine, *, max_tokens: int = 800, attempts: int = 3) -> Callable[[list[dict[str, str]], type[BaseModel]], BaseModel]:
    """A ``judge(messages, schema) -> value`` callable over any engine (schema-constrained, validated,
    retried with feedback); raises :class:`LLMError` when no valid answer comes within ``attempts``."""

    def judge(messages: list[dict[str, str]], schema: type[BaseModel]) -> BaseModel:
        [out] = run_tasks(engine, [Task(key="judge", messages=list(messages), schema=schema, max_tokens=max_tokens)], attempts=attempts)
        if out.value is None:
            raise LLMError(f"judge: no valid {schema.__name__} after {out.attempts} answers: {out.error}", step="judge")
        return out.value

    return judge

"""What an LLM answer is worth: parsing and validating it against its schema, the gate verdicts, the
budget gate, the feedback that asks for a corrected or shorter answer, and an answer's token bound.

:mod:`novelcraft.llm.tasks` runs the loop over these; :mod:`novelcraft.gates` adds the quality checks.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from .types import LLMResponse, answer_token_bound


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a gate says of a parsed answer."""

    kind: str  # "ok" | "retry" | "compress"
    message: str = ""

    @classmethod
    def ok(cls) -> Verdict:
        """The answer is accepted."""
        return cls("ok")

    @classmethod
    def retry(cls, message: str) -> Verdict:
        """The answer is rejected; ``message`` is fed back to the model."""
        return cls("retry", message)

    @classmethod
    def compress(cls, message: str) -> Verdict:
        """The answer is over budget; ``message`` asks the model for a shorter one."""
        return cls("compress", message)


Gate = Callable[[BaseModel], Verdict]


def token_budget_gate(
    count: Callable[[str], int], budget_tokens: int, what: str, render: Callable[[Any], str] | None = None
) -> Gate:
    """A gate asking for compression while ``render(value)`` is over ``budget_tokens`` (``count`` tokens)."""
    render = render or (lambda value: value.render())

    def gate(value: Any) -> Verdict:
        n = count(render(value))
        if n <= budget_tokens:
            return Verdict.ok()
        return Verdict.compress(f"the rendered {what} is {n} tokens; the budget is {budget_tokens}")

    return gate


def answer_max_tokens(configured: int | None, schema: type[BaseModel] | None, fallback: int = 700) -> int:
    """A task's ``max_tokens``: the recipe's setting, else the schema's bound (:func:`answer_token_bound`),
    else ``fallback``."""
    if configured is not None:
        return configured
    bound = answer_token_bound(schema) if schema is not None else None
    return bound if bound is not None else fallback


FeedbackBuilder = Callable[[str, str], str]
"""(kind 'retry'|'compress', message) -> the user turn that asks for a corrected answer."""
TextParser = Callable[[LLMResponse], tuple[Any, Verdict]]
"""A free-text answer -> (value, verdict); the value of a rejected answer may still be kept (``keep_best``)."""
Reviser = Callable[[Verdict, Any], tuple[list[dict[str, str]], Any]]
"""(verdict, rejected value) -> (messages of the next attempt, context recorded with its answer)."""


def default_feedback(kind: str, message: str) -> str:
    """The user turn asking for a corrected (``retry``) or shorter (``compress``) JSON answer."""
    if kind == "compress":
        return (
            f"Your answer is too long: {message}. Rewrite the same JSON object, keeping every field and the "
            "facts that matter most, but shorter. Answer with the JSON object only."
        )
    return f"Your answer was rejected: {message}. Answer again with a corrected JSON object only."


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
    except json.JSONDecodeError as exc:
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

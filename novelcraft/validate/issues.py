"""One problem found in a file, and the helpers every check uses to report problems."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found in a file.

    ``record`` names the record inside the file (``"record 12"`` = line 12 of a JSONL file,
    ``"scene 5"`` = the scene whose ``scene_id`` is 5, ``"meta"``), ``field`` the dotted path of the
    field inside that record (``"messages.2.content"``); both are ``None`` for file-level problems.
    """

    file: str
    record: str | None
    field: str | None
    reason: str
    severity: Severity = "error"

    def format(self) -> str:
        """One line: ``FILE: record 12: field messages.2.content: reason`` (warnings say so)."""
        parts = [self.file]
        if self.record:
            parts.append(self.record)
        if self.field:
            parts.append(f"field {self.field}")
        parts.append(self.reason if self.severity == "error" else f"warning: {self.reason}")
        return ": ".join(parts)

    def __str__(self) -> str:
        return self.format()


# --------------------------------------------------------------------------- helpers


def loc_path(loc: Iterable[Any]) -> str | None:
    """A pydantic error location as a dotted field path (``None`` for the whole object)."""
    parts = [str(p) for p in loc if isinstance(p, (str, int))]
    return ".".join(parts) or None


def error_reason(err: ErrorDetails) -> str:
    """A pydantic error as the reason an issue gives (unknown field, missing field, empty string...)."""
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field (not in the schema)"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_too_short" and (err.get("ctx") or {}).get("min_length") == 1:
        return "empty string"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


RecordOf = Callable[[tuple[Any, ...]], tuple[str | None, tuple[Any, ...]]]


def no_record(loc: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
    """A :data:`RecordOf` for files that are one object: no record, the whole location is the field."""
    return None, loc


def in_record(record: str) -> RecordOf:
    """A :data:`RecordOf` for one record of a file: every error of it is reported under ``record``."""

    def record_of(loc: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
        return record, loc

    return record_of


def schema_issues(
    file: str,
    model: type[BaseModel],
    data: Any,
    record_of: RecordOf = no_record,
    *,
    skip: Callable[[ErrorDetails], bool] | None = None,
) -> list[ValidationIssue]:
    """Validate ``data`` strictly (JSON types, as the JSON Schema) and map each error to an issue."""
    try:
        # JSON mode: strict about JSON types, and a JSON array is a valid tuple (Python mode would refuse it)
        model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        issues: list[ValidationIssue] = []
        seen: set[tuple[str | None, str | None, str]] = set()
        for err in exc.errors(include_url=False):
            if skip is not None and skip(err):
                continue
            record, rest = record_of(tuple(err["loc"]))
            key = (record, loc_path(rest), error_reason(err))
            if key not in seen:
                seen.add(key)
                # An answer over its word budget is kept (and flagged) by the LLM stages: report, don't fail.
                severity: Severity = "warning" if "words, budget is" in key[2] else "error"
                issues.append(ValidationIssue(file, key[0], key[1], key[2], severity))
        return issues
    return []


def count_texts(counter: TokenCounter, texts: Sequence[str]) -> list[int]:
    """Token counts of ``texts`` in one batch."""
    return list(counter.count_batch(list(texts))) if texts else []


def is_blank(value: Any) -> bool:
    """A non-empty string of only whitespace (an empty string is already a schema error)."""
    return isinstance(value, str) and value != "" and not value.strip()


def over_budget(n: int, budget: int, what: str, key: str) -> str:
    """The reason of a text over its token budget, naming the recipe key."""
    return f"{what} is {n} tokens, budget is {budget} ({key})"


def has_errors(issues: Iterable[ValidationIssue]) -> bool:
    """True when any issue is an error (warnings alone do not fail validation)."""
    return any(i.severity == "error" for i in issues)


def summarize(issues: Sequence[ValidationIssue]) -> str:
    """Counts of errors and warnings per file, then a total line."""
    if not issues:
        return "no issues"
    per_file: dict[str, Counter[str]] = {}
    for issue in issues:
        per_file.setdefault(issue.file, Counter())[issue.severity] += 1

    def fmt(c: Counter[str]) -> str:
        e, w = c["error"], c["warning"]
        return f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"

    lines = [f"{file}: {fmt(c)}" for file, c in per_file.items()]
    total = sum(per_file.values(), Counter())
    lines.append(f"total: {fmt(total)} in {len(per_file)} file{'s' * (len(per_file) != 1)}")
    return "\n".join(lines)

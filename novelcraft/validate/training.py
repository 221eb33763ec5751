"""Checks of training JSONL (ChatML records) and of the ``*.meta.jsonl`` sidecars compile writes."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import ErrorDetails

from ..chat_format import PROGRESS_PREFIX, USER_SECTIONS, ChatTemplate
from ..models import RecordMeta, TrainingRecord
from ..recipes import Budgets
from .issues import ValidationIssue, count_texts, in_record, is_blank, schema_issues
from .kinds import CHAT_ROLES, KIND_RECORD_META, META_SUFFIX, PROGRESS_LINE, SECTION_ALIASES, detect_kind

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

_PROGRESS_RE = re.compile(PROGRESS_LINE)


_SECTION_RE = re.compile(r"<([A-Za-z_][\w-]*)>(.*?)</\1>", re.DOTALL)


def _section_sizes(counter: TokenCounter, messages: Sequence[dict[str, str]], total: int) -> str:
    """``system 250, user 1100 (world_context 423, ...), assistant 2900, template 18``."""
    texts = [m["content"] for m in messages]
    user_sections: list[tuple[int, str, str]] = []
    for i, m in enumerate(messages):
        if m["role"] == "user":
            user_sections += [(i, name, body.strip()) for name, body in _SECTION_RE.findall(m["content"])]
    counts = count_texts(counter, texts + [body for _, _, body in user_sections])
    per_message, per_section = counts[: len(texts)], counts[len(texts) :]
    parts = []
    for i, (m, n) in enumerate(zip(messages, per_message)):
        inner = [f"{name} {c}" for (j, name, _), c in zip(user_sections, per_section) if j == i]
        parts.append(f"{m['role']} {n}" + (f" ({', '.join(inner)})" if inner else ""))
    parts.append(f"template {total - sum(per_message)}")
    return ", ".join(parts)


def _user_section_issues(file: str, rec: str, field: str, content: str) -> list[ValidationIssue]:
    """Warnings for a user turn that lacks the tagged sections of a novelcraft prompt
    (``<world_context>``, ``<running_summary>`` starting with ``NOVEL PROGRESS: XX%``,
    ``<scene_instruction>``; ``<instruction>`` is accepted for the last)."""
    found: dict[str, str] = {}
    for name, body in _SECTION_RE.findall(content):
        found.setdefault(SECTION_ALIASES.get(name, name), body)
    missing = [f"<{name}>" for name in USER_SECTIONS if name not in found]
    issues = []
    if missing:
        reason = f"user turn lacks the tagged section{'s' * (len(missing) != 1)} {', '.join(missing)}"
        issues.append(ValidationIssue(file, rec, field, reason, "warning"))
    summary = found.get("running_summary")
    if summary is not None:
        first_line = summary.strip().split("\n", 1)[0]
        match = _PROGRESS_RE.match(first_line)
        if match is None or int(match.group(1)) > 100:
            reason = f"<running_summary> does not start with a '{PROGRESS_PREFIX}XX%' line (0-100)"
            issues.append(ValidationIssue(file, rec, field, reason, "warning"))
    return issues


def training_issues(
    file: str,
    rows: Sequence[tuple[int, Any]],
    counter: TokenCounter | None,
    budgets: Budgets,
    template: ChatTemplate | None = None,
) -> list[ValidationIssue]:
    """Checks of ``(record number, parsed JSON)`` training rows."""
    issues: list[ValidationIssue] = []
    first_by_answer: dict[str, int] = {}
    first_by_messages: dict[str, int] = {}
    countable: list[tuple[int, list[dict[str, str]]]] = []
    for num, row in rows:
        rec = f"record {num}"
        if not isinstance(row, dict):
            issues.append(ValidationIssue(file, rec, None, f"expected a JSON object, got {type(row).__name__}"))
            continue
        raw_messages = row.get("messages")
        # None unless every turn has a string role and content: the checks below read both
        messages: list[dict[str, str]] | None = (
            raw_messages
            if isinstance(raw_messages, list)
            and all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in raw_messages
            )
            else None
        )
        roles_reported = False
        if messages is not None:
            roles = [m["role"] for m in messages]
            if all(r in CHAT_ROLES for r in roles) and roles != list(CHAT_ROLES):
                issues.append(
                    ValidationIssue(
                        file,
                        rec,
                        "messages",
                        f"roles must be {', '.join(CHAT_ROLES)} in this order; got {', '.join(roles) or 'none'}",
                    )
                )
                roles_reported = True

        def skip(err: ErrorDetails, _roles_reported: bool = roles_reported) -> bool:
            if err.get("type") == "value_error" and "roles must be" in str(err.get("msg")):
                return True
            return _roles_reported and tuple(err["loc"]) == ("messages",) and err["type"] in ("too_short", "too_long")

        issues += schema_issues(file, TrainingRecord, row, in_record(rec), skip=skip)
        if messages is None:
            continue
        for i, m in enumerate(messages):
            if is_blank(m["content"]):
                issues.append(ValidationIssue(file, rec, f"messages.{i}.content", "content is only whitespace"))
            elif m["role"] == "user" and m["content"].strip():
                issues += _user_section_issues(file, rec, f"messages.{i}.content", m["content"])
        whole = json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)
        same = first_by_messages.setdefault(whole, num)
        answers = [m["content"] for m in messages if m["role"] == "assistant" and m["content"].strip()]
        if same != num:
            issues.append(ValidationIssue(file, rec, None, f"duplicate record: same messages as record {same}"))
        elif answers:
            first = first_by_answer.setdefault(answers[-1], num)
            if first != num:
                issues.append(
                    ValidationIssue(file, rec, None, f"duplicate record: same assistant content as record {first}")
                )
        countable.append((num, messages))

    if counter is not None and countable:
        limit = budgets.record.max_tokens
        template = template or ChatTemplate()
        totals = count_texts(counter, [template.render(msgs) for _, msgs in countable])
        how = "as ChatML" if template.name == "qwen3_instruct_2507" else "with the tokenizer's chat template"
        for (num, msgs), total in zip(countable, totals):
            if total > limit:
                sizes = _section_sizes(counter, msgs, total)
                issues.append(
                    ValidationIssue(
                        file,
                        f"record {num}",
                        None,
                        f"{total} tokens {how}, budget is {limit} (budgets.record.max_tokens): {sizes}",
                    )
                )
    return issues


def _record_meta_issues(file: str, rows: Sequence[tuple[int, Any]]) -> list[ValidationIssue]:
    """A ``*.meta.jsonl`` sidecar: each line a RecordMeta, unique record ids, as many lines as its data file."""
    issues: list[ValidationIssue] = []
    seen: dict[str, int] = {}
    for num, row in rows:
        rec = f"record {num}"
        issues += schema_issues(file, RecordMeta, row, in_record(rec))
        rid = row.get("record_id") if isinstance(row, dict) else None
        if isinstance(rid, str):
            first = seen.setdefault(rid, num)
            if first != num:
                issues.append(ValidationIssue(file, rec, "record_id", f"duplicate record_id {rid!r} (record {first})"))
    data_file = Path(file[: -len(META_SUFFIX)] + ".jsonl")
    if data_file.is_file():
        try:
            n = sum(1 for line in data_file.read_text(encoding="utf-8").splitlines() if line.strip())
        except (OSError, UnicodeDecodeError):
            n = None
        if n is not None and n != len(rows):
            reason = f"{len(rows)} metadata lines but {data_file.name} holds {n} records; they must align line by line"
            issues.append(ValidationIssue(file, None, None, reason))
    return issues


def jsonl_rows(file: str, text: str) -> tuple[list[tuple[int, Any]], list[ValidationIssue]]:
    """``(line number, parsed JSON)`` of every non-blank line, and the lines that are no JSON."""
    issues: list[ValidationIssue] = []
    rows: list[tuple[int, Any]] = []
    for num, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            issues.append(ValidationIssue(file, f"record {num}", None, "blank line", "warning"))
            continue
        try:
            rows.append((num, json.loads(line)))
        except json.JSONDecodeError as exc:
            issues.append(
                ValidationIssue(
                    file, f"record {num}", None, f"invalid JSON on line {num}, column {exc.colno}: {exc.msg}"
                )
            )
    if not rows and not issues:
        issues.append(ValidationIssue(file, None, None, "file holds no records"))
    return rows, issues


def validate_jsonl(
    file: str,
    text: str,
    counter: TokenCounter | None,
    budgets: Budgets,
    template: ChatTemplate | None = None,
    continuation_max_tokens: int | None = None,
) -> list[ValidationIssue]:
    """Training records (or a metadata sidecar) one per line: scene records, or reasoning-continuation records
    (recognised by their ``<reasoning>`` answers; budget ``continuation_max_tokens``, default the record budget)."""
    from .continuation import (
        continuation_issues,
        continuation_meta_issues,
        is_continuation_meta_row,
        is_continuation_row,
    )

    rows, issues = jsonl_rows(file, text)
    if detect_kind(file, None) == KIND_RECORD_META:
        if rows and is_continuation_meta_row(rows[0][1]):
            return issues + continuation_meta_issues(file, rows)
        return issues + _record_meta_issues(file, rows)
    if rows and is_continuation_row(rows[0][1]):
        limit = continuation_max_tokens or budgets.record.max_tokens
        return issues + continuation_issues(file, rows, counter, limit, template)
    return issues + training_issues(file, rows, counter, budgets, template)

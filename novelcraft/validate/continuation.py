"""Checks of a reasoning-continuation data set: records with ``<reasoning>``/``<answer>`` and their sidecars.

A record passes when it is a :class:`~novelcraft.reasoning_format.ContinuationRecord` whose assistant turn
holds each tag once, in order, balanced and non-empty; when its sidecar line (``train.meta.jsonl`` next to
``train.jsonl``) is there, the answer must be exactly the source continuation (its SHA-256) and, with a token
counter, the record must fit the budget and have the token count the sidecar states.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat_format import ChatTemplate
from ..io import sha256_text
from ..reasoning_format import ContinuationRecord, parse_reasoned, tag_problems
from .issues import ValidationIssue, count_texts, in_record, schema_issues
from .kinds import META_SUFFIX, schema_model

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

#: the schema stems of the two line kinds.
RECORD_SCHEMA = "continuation_record"
META_SCHEMA = "continuation_meta"


def is_continuation_row(row: Any) -> bool:
    """A row whose assistant turn opens with ``<reasoning>`` or whose user turn is a continuation prompt (the
    CRA ``### Context:`` or the chat format's ``<context>``); a scene record that lost a turn is not one."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list) or not row["messages"]:
        return False
    turns = [m for m in row["messages"] if isinstance(m, dict)]
    last = turns[-1] if turns else {}
    content = last.get("content")
    opens = isinstance(content, str) and content.lstrip().startswith("<reasoning>")
    users = [m.get("content") for m in turns if m.get("role") == "user"]
    prompt = any(isinstance(u, str) and ("### Context:\n" in u or "<context>\n" in u) for u in users)
    return opens or prompt


def is_continuation_meta_row(row: Any) -> bool:
    """A sidecar line of a continuation data set (it names a chunk and the answer's hash)."""
    return isinstance(row, dict) and "chunk_index" in row and "answer_sha256" in row


def _sidecar(file: str) -> dict[int, dict[str, Any]]:
    """Sidecar rows by position (1-based record order), when ``X.meta.jsonl`` sits next to ``X.jsonl``."""
    path = Path(file)
    meta = path.with_name(path.name[: -len(".jsonl")] + META_SUFFIX) if path.name.endswith(".jsonl") else None
    if meta is None or not meta.is_file():
        return {}
    try:
        lines = [ln for ln in meta.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return {i: json.loads(ln) for i, ln in enumerate(lines, start=1)}
    except (OSError, UnicodeDecodeError, ValueError):
        return {}


def continuation_issues(
    file: str,
    rows: Sequence[tuple[int, Any]],
    counter: TokenCounter | None = None,
    max_tokens: int | None = None,
    template: ChatTemplate | None = None,
) -> list[ValidationIssue]:
    """Every problem of continuation records ``(line number, parsed JSON)``."""
    issues: list[ValidationIssue] = []
    sidecar = _sidecar(file)
    seen: dict[str, int] = {}
    countable: list[tuple[int, int, ContinuationRecord]] = []
    for position, (num, row) in enumerate(rows, start=1):
        rec = f"record {num}"
        found = schema_issues(file, ContinuationRecord, row, in_record(rec))
        issues += found
        if found:
            continue
        record = ContinuationRecord.model_validate(row)
        field = f"messages.{len(record.messages) - 1}.content"
        for problem in tag_problems(record.assistant):
            issues.append(ValidationIssue(file, rec, field, problem))
        parsed = parse_reasoned(record.assistant)
        first = seen.setdefault(parsed.answer, num)
        if first != num:
            issues.append(ValidationIssue(file, rec, None, f"duplicate record: same answer as record {first}"))
        meta = sidecar.get(position)
        if meta is not None:
            want = meta.get("answer_sha256")
            if isinstance(want, str) and sha256_text(parsed.answer) != want:
                issues.append(
                    ValidationIssue(
                        file, rec, field, f"the answer is not the source continuation {meta.get('record_id')!r}"
                    )
                )
        countable.append((num, position, record))
    if sidecar and len(sidecar) != len(rows):
        issues.append(
            ValidationIssue(file, None, None, f"{len(rows)} records but {len(sidecar)} sidecar lines; they must align")
        )
    if counter is not None and countable:
        template = template or ChatTemplate()
        totals = count_texts(counter, [template.render(r.messages) for _, _, r in countable])
        for (num, position, _), total in zip(countable, totals):
            if max_tokens is not None and total > max_tokens:
                issues.append(ValidationIssue(file, f"record {num}", None, f"{total} tokens, budget is {max_tokens}"))
            stated = (sidecar.get(position) or {}).get("tokens")
            if isinstance(stated, int) and stated != total:
                issues.append(
                    ValidationIssue(file, f"record {num}", None, f"{total} tokens, the sidecar says {stated}")
                )
    return issues


def continuation_meta_issues(file: str, rows: Sequence[tuple[int, Any]]) -> list[ValidationIssue]:
    """A continuation sidecar: each line a ContinuationMeta, unique record ids, spans in order."""
    issues: list[ValidationIssue] = []
    model = schema_model(META_SCHEMA)
    seen: dict[str, int] = {}
    for num, row in rows:
        rec = f"record {num}"
        found = schema_issues(file, model, row, in_record(rec))
        issues += found
        if found or not isinstance(row, dict):
            continue
        first = seen.setdefault(row["record_id"], num)
        if first != num:
            issues.append(ValidationIssue(file, rec, "record_id", f"duplicate record_id (record {first})"))
        if not row["source_start"] < row["source_split"] < row["source_end"]:
            issues.append(ValidationIssue(file, rec, None, "source_start < source_split < source_end does not hold"))
    return issues

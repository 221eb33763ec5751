"""Checks of Book JSON (and its stage files), scenes and single LLM-answer objects, with token budgets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..models import Book
from ..recipes import Budgets
from .issues import RecordOf, Severity, ValidationIssue, count_texts, is_blank, over_budget, schema_issues
from .kinds import schema_model

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter


@runtime_checkable
class _Renders(Protocol):
    """An LLM answer that goes into a record as its rendered text (world context, summary, instruction)."""

    def render(self) -> str: ...


def _book_record_of(data: dict[str, Any]) -> RecordOf:
    def label(items: Any, i: int, key: str, prefix: str, fallback: str) -> str:
        item = items[i] if isinstance(items, list) and i < len(items) else None
        value = item.get(key) if isinstance(item, dict) else None
        return f"{prefix} {value}" if isinstance(value, int) and not isinstance(value, bool) else f"{fallback}[{i}]"

    def record_of(loc: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
        if loc and loc[0] == "meta":
            return "meta", loc[1:]
        if len(loc) >= 2 and isinstance(loc[1], int):
            if loc[0] == "scenes":
                return label(data.get("scenes"), loc[1], "scene_id", "scene", "scenes"), loc[2:]
            if loc[0] == "chapters":
                return label(data.get("chapters"), loc[1], "index", "chapter", "chapters"), loc[2:]
            if loc[0] == "reference":
                return label(data.get("reference"), loc[1], "index", "reference", "reference"), loc[2:]
        return None, loc

    return record_of


def _scene_label(scene: Any, pos: int) -> str:
    sid = scene.get("scene_id") if isinstance(scene, dict) else None
    return f"scene {sid}" if isinstance(sid, int) and not isinstance(sid, bool) else f"scenes[{pos}]"


def _scene_budget_issues(
    file: str,
    scenes: Sequence[tuple[str | None, dict[str, Any]]],
    counter: TokenCounter,
    budgets: Budgets,
) -> list[ValidationIssue]:
    """Token budgets of scene text, running summary (errors) and instruction (warnings), one batch."""
    checks: tuple[tuple[str, int, str, Severity], ...] = (
        ("text", budgets.scene.hard_max, "budgets.scene.hard_max", "error"),
        ("running_summary", budgets.record.running_summary, "budgets.record.running_summary", "error"),
        ("instruction", budgets.record.instruction, "budgets.record.instruction", "warning"),
    )
    jobs: list[tuple[str | None, str, int, str, Severity]] = []
    texts: list[str] = []
    for label, scene in scenes:
        for field, budget, key, severity in checks:
            value = scene.get(field)
            if isinstance(value, str) and value:
                jobs.append((label, field, budget, key, severity))
                texts.append(value)
    issues = []
    labels = {label: scene for label, scene in scenes}
    for (label, field, budget, key, severity), n in zip(jobs, count_texts(counter, texts)):
        if n > budget:
            issues.append(ValidationIssue(file, label, field, over_budget(n, budget, field, key), severity))
        recorded = labels[label].get("tokens") if field == "text" else None
        if isinstance(recorded, int) and recorded != n:
            reason = f"tokens field says {recorded} but the text has {n} tokens with {counter.name}"
            issues.append(ValidationIssue(file, label, "tokens", reason))
    return issues


def book_issues(
    file: str, data: dict[str, Any], counter: TokenCounter | None, budgets: Budgets
) -> list[ValidationIssue]:
    """Checks of a Book JSON (or a stage file holding one): schema, scene ids, declared counts, duplicates, budgets."""
    issues = schema_issues(file, Book, data, _book_record_of(data))
    raw_meta = data.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    scenes_raw = data.get("scenes")
    scenes = scenes_raw if isinstance(scenes_raw, list) else []
    chapters = data.get("chapters") if isinstance(data.get("chapters"), list) else []

    # scene ids: unique and increasing
    seen_at: dict[int, int] = {}
    previous: int | None = None
    for pos, scene in enumerate(scenes):
        sid = scene.get("scene_id") if isinstance(scene, dict) else None
        if not isinstance(sid, int) or isinstance(sid, bool):
            continue
        if sid in seen_at:
            issues.append(
                ValidationIssue(
                    file,
                    f"scene {sid}",
                    "scene_id",
                    f"duplicate scene_id {sid} (scenes[{seen_at[sid]}] and scenes[{pos}])",
                )
            )
        elif previous is not None and sid <= previous:
            issues.append(
                ValidationIssue(
                    file, f"scene {sid}", "scene_id", f"scene_id {sid} follows scene_id {previous}; ids must increase"
                )
            )
        else:
            seen_at[sid] = pos
        previous = sid

    # declared counts
    total_scenes = meta.get("total_scenes")
    if isinstance(total_scenes, int) and isinstance(scenes_raw, list) and total_scenes != len(scenes):
        reference = sum(
            1 for s in scenes if isinstance(s, dict) and (s.get("is_reference") or s.get("chapter_index") == 0)
        )
        note = (
            f" ({len(scenes) - reference} narrative + {reference} reference scene{'s' * (reference != 1)})"
            if reference
            else ""
        )
        issues.append(
            ValidationIssue(
                file,
                "meta",
                "total_scenes",
                f"total_scenes is {total_scenes} but the file has {len(scenes)} scenes{note}",
            )
        )
    total_chapters = meta.get("total_chapters")
    if isinstance(total_chapters, int) and chapters and total_chapters != len(chapters):
        issues.append(
            ValidationIssue(
                file,
                "meta",
                "total_chapters",
                f"total_chapters is {total_chapters} but the file has {len(chapters)} chapters",
            )
        )

    # scene texts: not blank, not duplicated
    first_by_text: dict[str, str] = {}
    for pos, scene in enumerate(scenes):
        if not isinstance(scene, dict):
            continue
        label = _scene_label(scene, pos)
        if scene.get("chapter_index") == 0 and scene.get("is_reference") is not True:
            issues.append(
                ValidationIssue(
                    file,
                    label,
                    "is_reference",
                    "chapter_index 0 marks a reference scene but is_reference is not true",
                    "warning",
                )
            )
        text = scene.get("text")
        if is_blank(text):
            issues.append(ValidationIssue(file, label, "text", "text is only whitespace"))
        if isinstance(text, str) and text.strip():
            first = first_by_text.setdefault(text, label)
            if first != label:
                issues.append(ValidationIssue(file, label, "text", f"duplicate scene: same text as {first}"))

    if counter is not None:
        wc = meta.get("world_context")
        if isinstance(wc, str) and wc:
            n = counter.count(wc)
            if n > budgets.record.world_context:
                issues.append(
                    ValidationIssue(
                        file,
                        "meta",
                        "world_context",
                        over_budget(n, budgets.record.world_context, "world_context", "budgets.record.world_context"),
                    )
                )
        labelled = [(_scene_label(s, pos), s) for pos, s in enumerate(scenes) if isinstance(s, dict)]
        issues += _scene_budget_issues(file, labelled, counter, budgets)
    return issues


def object_issues(
    file: str, kind: str, data: dict[str, Any], counter: TokenCounter | None, budgets: Budgets
) -> list[ValidationIssue]:
    """Checks of a single object of ``kind`` (a scene, a world context...): schema, then token budgets."""
    model = schema_model(kind)
    issues = schema_issues(file, model, data)
    if kind == "scene":
        label = _scene_label(data, 0) if "scene_id" in data else None
        if is_blank(data.get("text")):
            issues.append(ValidationIssue(file, label, "text", "text is only whitespace"))
        if counter is not None:
            issues += _scene_budget_issues(file, [(label, data)], counter, budgets)
        return issues
    if counter is None or issues:
        return issues
    # budgets of the rendered text, as it goes into a training record
    obj = model.model_validate(data, strict=True)
    limits: dict[str, tuple[int, str, Severity]] = {
        "world_context": (budgets.record.world_context, "budgets.record.world_context", "error"),
        "running_summary": (budgets.record.running_summary, "budgets.record.running_summary", "error"),
        "instruction": (budgets.record.instruction, "budgets.record.instruction", "warning"),
    }
    budget, key, severity = limits[kind]
    if not isinstance(obj, _Renders):
        raise TypeError(f"the {kind} model has no render(): its budget is on the rendered text")
    n = counter.count(obj.render())
    if n > budget:
        reason = over_budget(n, budget, f"rendered {kind}", key)
        issues.append(ValidationIssue(file, None, None, reason, severity))
    return issues

"""Validation of data-set files: the engine behind ``novelcraft validate PATH...``.

Every check returns :class:`ValidationIssue` values (one line each, ``FILE: RECORD: field F: reason``)
instead of raising, so one run reports everything wrong with a data set. What a file holds is
detected from its suffix and content (:func:`detect_kind`):

* ``*.jsonl`` — ChatML training records, one ``{"messages": [...]}`` per line ("training");
* ``*.meta.jsonl`` — the per-record metadata sidecar that ``novelcraft compile`` writes next to a
  training file, one :class:`~novelcraft.compile.RecordMeta` per line ("record_meta");
* ``*.json`` with ``meta`` and ``scenes`` — a Book JSON or any stage file of one ("book");
* ``*.json`` holding a single world context, running summary, instruction or scene object;
* ``*.yaml`` / ``*.yml`` with a ``kind:`` key — a recipe ("recipe").

Token budgets are only checked when a token counter is given (``novelcraft.tokens``); all texts of
one file are counted in one batch.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Sequence

from pydantic import BaseModel, ValidationError

from .compile import PROGRESS_PREFIX, SECTION_INSTRUCTION, USER_SECTIONS, RecordMeta, render_chatml
from .models import Book, Instruction, RunningSummary, Scene, TrainingRecord, WorldContext
from .recipes import Budgets

if TYPE_CHECKING:  # pragma: no cover
    from .tokens import TokenCounter

log = logging.getLogger(__name__)

Severity = Literal["error", "warning"]

KIND_TRAINING = "training"
KIND_BOOK = "book"
KIND_RECIPE = "recipe"
KIND_RECORD_META = "record_meta"
KIND_UNKNOWN = "unknown"

#: suffix of the compiled data set's metadata sidecars (``train.meta.jsonl``).
META_SUFFIX = ".meta.jsonl"
#: other names accepted for a user-turn section (the tag another tool writes -> our tag).
SECTION_ALIASES = {"instruction": SECTION_INSTRUCTION}
_PROGRESS_RE = re.compile(rf"^{re.escape(PROGRESS_PREFIX)}(\d{{1,3}})%\s*$")

#: single-object JSON files recognized by their keys, in detection priority order.
OBJECT_MODELS: dict[str, type[BaseModel]] = {
    "world_context": WorldContext,
    "running_summary": RunningSummary,
    "instruction": Instruction,
    "scene": Scene,
}

#: suffixes picked up when a directory is given.
DATA_SUFFIXES = (".json", ".jsonl", ".yaml", ".yml")
#: directory names never descended into.
SKIP_DIRS = frozenset({"__pycache__", "node_modules", ".git", ".venv", "venv"})

CHAT_ROLES = ("system", "user", "assistant")


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


def _loc_path(loc: Iterable[Any]) -> str | None:
    parts = [str(p) for p in loc if isinstance(p, (str, int))]
    return ".".join(parts) or None


def _error_reason(err: dict[str, Any]) -> str:
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


def _no_record(loc: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
    return None, loc


def _schema_issues(
    file: str,
    model: type[BaseModel],
    data: Any,
    record_of: RecordOf = _no_record,
    *,
    skip: Callable[[dict[str, Any]], bool] | None = None,
) -> list[ValidationIssue]:
    """Validate ``data`` strictly (JSON types, as the JSON Schema) and map each error to an issue."""
    try:
        model.model_validate(data, strict=True)
    except ValidationError as exc:
        issues: list[ValidationIssue] = []
        seen: set[tuple[str | None, str | None, str]] = set()
        for err in exc.errors(include_url=False):
            if skip is not None and skip(err):
                continue
            record, rest = record_of(tuple(err["loc"]))
            key = (record, _loc_path(rest), _error_reason(err))
            if key not in seen:
                seen.add(key)
                issues.append(ValidationIssue(file, key[0], key[1], key[2]))
        return issues
    return []


def _count(counter: "TokenCounter", texts: Sequence[str]) -> list[int]:
    return list(counter.count_batch(list(texts))) if texts else []


def _is_blank(value: Any) -> bool:
    """A non-empty string of only whitespace (an empty string is already a schema error)."""
    return isinstance(value, str) and value != "" and not value.strip()


def _over(n: int, budget: int, what: str, key: str) -> str:
    return f"{what} is {n} tokens, budget is {budget} ({key})"


# --------------------------------------------------------------------------- kind detection


def _matching_object_kind(data: dict[str, Any]) -> str | None:
    keys = set(data)
    best: tuple[float, str] | None = None
    for kind, model in OBJECT_MODELS.items():
        fields = set(model.model_fields)
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        if required <= keys and keys <= fields:
            return kind
        # a broken object of this kind: most of its required keys and few foreign ones
        hits = len(keys & required) / len(required)
        foreign = len(keys - fields) / len(keys)
        score = hits - foreign
        if hits >= 0.5 and score > 0 and (best is None or score > best[0]):
            best = (score, kind)
    return best[1] if best else None


def detect_kind(path: str | Path, data: Any) -> str:
    """What a file holds: ``"training"``, ``"book"``, ``"recipe"``, one of :data:`OBJECT_MODELS`,
    or ``"unknown"``.

    ``data`` is the parsed content (ignored for ``.jsonl`` files, which are always training data).
    """
    suffix = Path(path).suffix.lower()
    if Path(path).name.lower().endswith(META_SUFFIX):
        return KIND_RECORD_META
    if suffix == ".jsonl":
        return KIND_TRAINING
    if suffix in (".yaml", ".yml"):
        return KIND_RECIPE if isinstance(data, dict) and "kind" in data else KIND_UNKNOWN
    if not isinstance(data, dict) or not data:
        return KIND_UNKNOWN
    if "meta" in data and "scenes" in data:
        return KIND_BOOK
    if "messages" in data:
        return KIND_TRAINING
    return _matching_object_kind(data) or KIND_UNKNOWN


# --------------------------------------------------------------------------- training records


_SECTION_RE = re.compile(r"<([A-Za-z_][\w-]*)>(.*?)</\1>", re.DOTALL)


def _section_sizes(counter: "TokenCounter", messages: Sequence[dict[str, str]], total: int) -> str:
    """``system 250, user 1100 (world_context 423, ...), assistant 2900, template 18``."""
    texts = [m["content"] for m in messages]
    user_sections: list[tuple[int, str, str]] = []
    for i, m in enumerate(messages):
        if m["role"] == "user":
            user_sections += [(i, name, body.strip()) for name, body in _SECTION_RE.findall(m["content"])]
    counts = _count(counter, texts + [body for _, _, body in user_sections])
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


def _training_issues(
    file: str,
    rows: Sequence[tuple[int, Any]],
    counter: "TokenCounter | None",
    budgets: Budgets,
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
        messages = row.get("messages")
        well_formed = isinstance(messages, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        )
        roles_reported = False
        if well_formed:
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

        def skip(err: dict[str, Any], _roles_reported: bool = roles_reported) -> bool:
            if err.get("type") == "value_error" and "roles must be" in str(err.get("msg")):
                return True
            return _roles_reported and tuple(err["loc"]) == ("messages",) and err["type"] in ("too_short", "too_long")

        issues += _schema_issues(file, TrainingRecord, row, lambda loc, r=rec: (r, loc), skip=skip)
        if not well_formed:
            continue
        for i, m in enumerate(messages):
            if _is_blank(m["content"]):
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
        totals = _count(counter, [render_chatml(msgs) for _, msgs in countable])
        for (num, msgs), total in zip(countable, totals):
            if total > limit:
                sizes = _section_sizes(counter, msgs, total)
                issues.append(
                    ValidationIssue(
                        file,
                        f"record {num}",
                        None,
                        f"{total} tokens as ChatML, budget is {limit} (budgets.record.max_tokens): {sizes}",
                    )
                )
    return issues


def _record_meta_issues(file: str, rows: Sequence[tuple[int, Any]]) -> list[ValidationIssue]:
    """A ``*.meta.jsonl`` sidecar: each line a RecordMeta, unique record ids, as many lines as its data file."""
    issues: list[ValidationIssue] = []
    seen: dict[str, int] = {}
    for num, row in rows:
        rec = f"record {num}"
        issues += _schema_issues(file, RecordMeta, row, lambda loc, r=rec: (r, loc))
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


def _validate_jsonl(file: str, text: str, counter: "TokenCounter | None", budgets: Budgets) -> list[ValidationIssue]:
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
    if detect_kind(file, None) == KIND_RECORD_META:
        return issues + _record_meta_issues(file, rows)
    return issues + _training_issues(file, rows, counter, budgets)


# --------------------------------------------------------------------------- books and scenes


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
    counter: "TokenCounter",
    budgets: Budgets,
) -> list[ValidationIssue]:
    """Token budgets of scene text, running summary (errors) and instruction (warnings), one batch."""
    checks = (
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
                jobs.append((label, field, budget, key, severity))  # type: ignore[arg-type]
                texts.append(value)
    issues = []
    labels = {label: scene for label, scene in scenes}
    for (label, field, budget, key, severity), n in zip(jobs, _count(counter, texts)):
        if n > budget:
            issues.append(ValidationIssue(file, label, field, _over(n, budget, field, key), severity))
        recorded = labels[label].get("tokens") if field == "text" else None
        if isinstance(recorded, int) and recorded != n:
            reason = f"tokens field says {recorded} but the text has {n} tokens with {counter.name}"
            issues.append(ValidationIssue(file, label, "tokens", reason))
    return issues


def _book_issues(
    file: str, data: dict[str, Any], counter: "TokenCounter | None", budgets: Budgets
) -> list[ValidationIssue]:
    issues = _schema_issues(file, Book, data, _book_record_of(data))
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
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
                    file, label, "is_reference", "chapter_index 0 marks a reference scene but is_reference is not true",
                    "warning",
                )
            )
        text = scene.get("text")
        if _is_blank(text):
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
                        _over(n, budgets.record.world_context, "world_context", "budgets.record.world_context"),
                    )
                )
        labelled = [(_scene_label(s, pos), s) for pos, s in enumerate(scenes) if isinstance(s, dict)]
        issues += _scene_budget_issues(file, labelled, counter, budgets)
    return issues


def _object_issues(
    file: str, kind: str, data: dict[str, Any], counter: "TokenCounter | None", budgets: Budgets
) -> list[ValidationIssue]:
    model = OBJECT_MODELS[kind]
    issues = _schema_issues(file, model, data)
    if kind == "scene":
        label = _scene_label(data, 0) if "scene_id" in data else None
        if _is_blank(data.get("text")):
            issues.append(ValidationIssue(file, label, "text", "text is only whitespace"))
        if counter is not None:
            issues += _scene_budget_issues(file, [(label, data)], counter, budgets)
        return issues
    if counter is None or issues:
        return issues
    # budgets of the rendered text, as it goes into a training record
    obj = model.model_validate(data, strict=True)
    budget, key, severity = {
        "world_context": (budgets.record.world_context, "budgets.record.world_context", "error"),
        "running_summary": (budgets.record.running_summary, "budgets.record.running_summary", "error"),
        "instruction": (budgets.record.instruction, "budgets.record.instruction", "warning"),
    }[kind]
    n = counter.count(obj.render())  # type: ignore[attr-defined]
    if n > budget:
        reason = _over(n, budget, f"rendered {kind}", key)
        issues.append(ValidationIssue(file, None, None, reason, severity))  # type: ignore[arg-type]
    return issues


# --------------------------------------------------------------------------- recipes


def _recipe_issues(file: str, data: dict[str, Any]) -> list[ValidationIssue]:
    from .errors import RecipeError
    from .recipes import RECIPE_KINDS, RECIPE_VERSION, recipe_class, recipe_from_dict

    try:
        recipe_from_dict(data, source=file)
    except RecipeError as exc:
        if data.get("kind") in RECIPE_KINDS and data.get("version") == RECIPE_VERSION:
            issues = _schema_issues(file, recipe_class(data["kind"]), data)
            if issues:
                return issues
        return [ValidationIssue(file, None, None, exc.cause)]
    return []


# --------------------------------------------------------------------------- entry points


def _read_text(path: Path) -> tuple[str | None, ValidationIssue | None]:
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, ValidationIssue(file, None, None, f"cannot read file ({exc.strerror or exc})")
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, ValidationIssue(file, None, None, f"not UTF-8 text (invalid byte at offset {exc.start})")


def validate_file(
    path: str | Path,
    *,
    counter: "TokenCounter | None" = None,
    budgets: Budgets | None = None,
    skip_unknown: bool = False,
) -> list[ValidationIssue]:
    """All issues of one file; an empty list means the file is valid.

    ``skip_unknown`` returns no issue for a well-formed file of no known kind (used when searching
    folders, which also hold run manifests and other bookkeeping files).

    ``counter`` (from :func:`novelcraft.tokens.load_token_counter`) turns on the token-budget checks
    against ``budgets`` (default :class:`~novelcraft.recipes.Budgets`).
    """
    path = Path(path)
    file = str(path)
    budgets = budgets if budgets is not None else Budgets()
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        expected = ", ".join(DATA_SUFFIXES)
        return [ValidationIssue(file, None, None, f"unsupported file type (expected one of {expected})")]
    text, problem = _read_text(path)
    if problem is not None:
        return [problem]
    assert text is not None
    if suffix == ".jsonl":
        return _validate_jsonl(file, text, counter, budgets)

    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            return [ValidationIssue(file, None, None, reason)]
    else:
        import yaml

        from .recipes import yaml_error_message

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            return [ValidationIssue(file, None, None, yaml_error_message(exc))]

    kind = detect_kind(path, data)
    log.debug("%s: detected %s", file, kind)
    if kind == KIND_BOOK:
        return _book_issues(file, data, counter, budgets)
    if kind == KIND_TRAINING:
        return _training_issues(file, [(1, data)], counter, budgets)
    if kind == KIND_RECIPE:
        return _recipe_issues(file, data)
    if kind in OBJECT_MODELS:
        return _object_issues(file, kind, data, counter, budgets)
    if skip_unknown:
        log.info("%s: not a data-set file, skipped", file)
        return []
    return [
        ValidationIssue(
            file,
            None,
            None,
            "unknown content: expected a Book JSON (meta + scenes), training JSONL ({\"messages\": [...]} per line), "
            f"a {'/'.join(OBJECT_MODELS)} JSON object, or a recipe YAML with a kind: key",
        )
    ]


def iter_data_files(directory: str | Path) -> list[Path]:
    """Data files under ``directory`` (sorted): ``*.json``, ``*.jsonl``, ``*.yaml``, ``*.yml``.

    Hidden folders, virtualenvs and generated ``*.schema.json`` files are skipped.
    """
    root = Path(directory)
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if any(part.startswith(".") or part in SKIP_DIRS for part in rel[:-1]) or rel[-1].startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not p.name.endswith(".schema.json"):
            out.append(p)
    return sorted(out)


def validate_paths(
    paths: Iterable[str | Path], *, counter: "TokenCounter | None" = None, budgets: Budgets | None = None
) -> list[ValidationIssue]:
    """Issues of every file named in ``paths``; folders are searched with :func:`iter_data_files`."""
    issues: list[ValidationIssue] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = iter_data_files(path)
            if not files:
                issues.append(
                    ValidationIssue(str(path), None, None, "no .json, .jsonl or .yaml files found", "warning")
                )
            for f in files:
                issues += validate_file(f, counter=counter, budgets=budgets, skip_unknown=True)
        elif path.exists():
            issues += validate_file(path, counter=counter, budgets=budgets)
        else:
            issues.append(ValidationIssue(str(path), None, None, "no such file or directory"))
    return issues


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

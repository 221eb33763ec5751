"""``validate_file`` / ``validate_paths``: the engine behind ``novelcraft validate PATH...``.

Every check returns :class:`~novelcraft.validate.issues.ValidationIssue` values (one line each,
``FILE: RECORD: field F: reason``) instead of raising, so one run reports everything wrong with a data set.
What a file holds is detected by :func:`~novelcraft.validate.kinds.detect_kind`; token budgets are checked
only when a token counter is given, all texts of one file in one batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat_format import ChatTemplate
from ..recipes import Budgets
from .book import book_issues, object_issues
from .issues import ValidationIssue, in_record, schema_issues
from .kinds import (
    DATA_SUFFIXES,
    FILE_KINDS,
    KIND_BOOK,
    KIND_RECIPE,
    KIND_TRAINING,
    OBJECT_KINDS,
    SKIP_DIRS,
    detect_kind,
    file_kind,
    schema_model,
)
from .training import jsonl_rows, training_issues, validate_jsonl

if TYPE_CHECKING:  # pragma: no cover
    from ..tokens import TokenCounter

log = logging.getLogger(__name__)


def _recipe_issues(file: str, data: dict[str, Any]) -> list[ValidationIssue]:
    from ..errors import RecipeError
    from ..recipes import RECIPE_KINDS, RECIPE_VERSION, recipe_class, recipe_from_dict

    try:
        recipe_from_dict(data, source=file)
    except RecipeError as exc:
        if data.get("kind") in RECIPE_KINDS and data.get("version") == RECIPE_VERSION:
            issues = schema_issues(file, recipe_class(data["kind"]), data)
            if issues:
                return issues
        return [ValidationIssue(file, None, None, exc.cause)]
    return []


def _model_issues(file: str, stem: str, data: Any) -> list[ValidationIssue]:
    """A file of a named kind: its content against the kind's schema."""
    return schema_issues(file, schema_model(stem), data)


def _model_jsonl_issues(file: str, stem: str, text: str) -> list[ValidationIssue]:
    rows, issues = jsonl_rows(file, text)
    model = schema_model(stem)
    for num, row in rows:
        issues += schema_issues(file, model, row, in_record(f"record {num}"))
    return issues


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
    counter: TokenCounter | None = None,
    budgets: Budgets | None = None,
    skip_unknown: bool = False,
    chat_template: ChatTemplate | None = None,
    continuation_max_tokens: int | None = None,
) -> list[ValidationIssue]:
    """All issues of one file; an empty list means the file is valid.

    ``skip_unknown`` returns no issue for a well-formed file of no known kind (used when searching
    folders, which also hold run manifests and other bookkeeping files).

    ``counter`` (from :func:`novelcraft.tokens.load_token_counter`) turns on the token-budget checks
    against ``budgets`` (default :class:`~novelcraft.recipes.Budgets`); records are rendered with
    ``chat_template`` (default: the Instruct-2507 template) for counting; reasoning-continuation records are
    held to ``continuation_max_tokens`` (default: the record budget).
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
        named = file_kind(path)
        if named is not None and named.jsonl:
            return _model_jsonl_issues(file, named.schema, text)
        return validate_jsonl(file, text, counter, budgets, chat_template, continuation_max_tokens)

    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            return [ValidationIssue(file, None, None, reason)]
    else:
        import yaml

        from ..recipes import yaml_error_message

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            return [ValidationIssue(file, None, None, yaml_error_message(exc))]

    kind = detect_kind(path, data)
    log.debug("%s: detected %s", file, kind)
    if kind == KIND_BOOK:
        return book_issues(file, data, counter, budgets)
    if kind == KIND_TRAINING:
        return training_issues(file, [(1, data)], counter, budgets, chat_template)
    if kind == KIND_RECIPE:
        return _recipe_issues(file, data)
    if kind in OBJECT_KINDS:
        return object_issues(file, kind, data, counter, budgets)
    if kind == "run_stats":
        issues = _model_issues(file, kind, data)
        if not issues and data.get("error"):
            # valid as a record, but the run it describes did not finish: its outputs are incomplete
            stopped = f"the run stopped before the end: {data['error']}"
            issues.append(ValidationIssue(file, None, "error", stopped, "warning"))
        return issues
    if kind != "unknown":
        return _model_issues(file, kind, data)
    if skip_unknown:
        log.info("%s: not a data-set file, skipped", file)
        return []
    return [
        ValidationIssue(
            file,
            None,
            None,
            'unknown content: expected a Book JSON (meta + scenes), training JSONL ({"messages": [...]} per line), '
            f"a {'/'.join(OBJECT_KINDS)} JSON object, a recipe YAML with a kind: key, or a file novelcraft "
            f"writes ({', '.join(sorted({p for k in FILE_KINDS for p in k.names}))})",
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
    paths: Iterable[str | Path],
    *,
    counter: TokenCounter | None = None,
    budgets: Budgets | None = None,
    chat_template: ChatTemplate | None = None,
    continuation_max_tokens: int | None = None,
) -> list[ValidationIssue]:
    """Issues of every file named in ``paths``; folders are searched with :func:`iter_data_files`
    (``continuation_max_tokens``: the budget of reasoning-continuation records, see :func:`validate_file`)."""
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
                issues += validate_file(
                    f,
                    counter=counter,
                    budgets=budgets,
                    skip_unknown=True,
                    chat_template=chat_template,
                    continuation_max_tokens=continuation_max_tokens,
                )
        elif path.exists():
            issues += validate_file(
                path,
                counter=counter,
                budgets=budgets,
                chat_template=chat_template,
                continuation_max_tokens=continuation_max_tokens,
            )
        else:
            issues.append(ValidationIssue(str(path), None, None, "no such file or directory"))
    return issues

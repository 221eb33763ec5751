"""``novelcraft.validate.issues``: how an issue reads, and the summary of many."""

from __future__ import annotations

from novelcraft.validate import ValidationIssue, has_errors, summarize
from novelcraft.validate.issues import error_reason, in_record, loc_path, no_record, over_budget


def test_issue_format() -> None:
    issue = ValidationIssue("train.jsonl", "record 12", "messages.2.content", "empty string")
    assert str(issue) == "train.jsonl: record 12: field messages.2.content: empty string"
    warning = ValidationIssue("book.json", None, None, "no world context", "warning")
    assert warning.format() == "book.json: warning: no world context"


def test_summary_and_errors() -> None:
    issues = [
        ValidationIssue("a.json", None, None, "bad"),
        ValidationIssue("a.json", None, None, "meh", "warning"),
        ValidationIssue("b.json", None, None, "meh", "warning"),
    ]
    summary = summarize(issues)
    assert "a.json: 1 error, 1 warning" in summary and "b.json: 0 errors, 1 warning" in summary
    assert summary.endswith("total: 1 error, 2 warnings in 2 files")
    assert has_errors(issues) and not has_errors(issues[1:])
    assert summarize([]) == "no issues"


def test_locations_and_reasons() -> None:
    assert loc_path(("scenes", 3, "text")) == "scenes.3.text" and loc_path(()) is None
    assert no_record(("a", 1)) == (None, ("a", 1))
    assert in_record("record 4")(("messages", 0)) == ("record 4", ("messages", 0))
    assert (
        error_reason({"type": "extra_forbidden", "loc": ("x",), "msg": "", "input": 1})
        == "unknown field (not in the schema)"
    )
    assert error_reason({"type": "missing", "loc": ("x",), "msg": "", "input": 1}) == "required field is missing"
    assert error_reason({"type": "value_error", "loc": (), "msg": "Value error, too long", "input": 1}) == "too long"
    assert over_budget(450, 400, "world_context", "budgets.record.world_context") == (
        "world_context is 450 tokens, budget is 400 (budgets.record.world_context)"
    )

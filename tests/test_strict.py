"""``novelcraft.strict``: unknown keys are errors in records and recipe sections alike."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from novelcraft.strict import Record, Strict


class Section(Strict):
    """A recipe section for the test."""

    size: int = 1


class Line(Record):
    """A persisted record for the test."""

    text: str


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Section.model_validate({"sise": 2})
    with pytest.raises(ValidationError, match="extra"):
        Line.model_validate({"text": "a", "colour": "red"})


def test_recipe_sections_validate_assignments() -> None:
    s = Section()
    with pytest.raises(ValidationError):
        s.size = "big"  # type: ignore[assignment]  # the wrong type is the point of the test
    line = Line(text="a")
    line.text = 3  # type: ignore[assignment]  # records are not re-validated on assignment
    assert line.text == 3

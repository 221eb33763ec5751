"""Records of the per-book stage files the LLM stages write (``04_*`` .. ``07_*``, ``llm_flags.json``).

Each file is written from its model, so what is on disk always validates against ``schemas/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, RootModel

from ..models import Instruction, RunningSummary, Scene, WorldContext
from ..strict import Record

#: validation context under which answers kept over their word budget stay valid (see ``models._budgets_on``)
_KEPT = {"word_budgets": False}


class WorldContextFile(Record):
    """``04_world_context.json``: the stage-4 answer, its rendering and its size."""

    world_context: WorldContext
    rendered: str = Field(..., min_length=1)
    tokens: int = Field(..., ge=0)
    flagged: bool = False
    flag_reason: str | None = None

    @classmethod
    def of(cls, world_context: WorldContext, **fields: Any) -> WorldContextFile:
        """The file of a stage-4 answer; one kept over a field's word budget (flagged by the stage) is
        written as it is, like the summaries below."""
        return cls.model_validate({"world_context": world_context, **fields}, context=_KEPT)


class ScenesFile(Record):
    """``05_scenes.json``: the atomic scene starts chosen per chapter and the merged scenes."""

    atomic_starts: dict[str, list[int]] = Field(..., description="chapter index -> first block of each atomic scene")
    scenes: list[Scene]


class SummariesFile(RootModel[dict[str, RunningSummary]]):
    """``06_summaries.json``: scene id -> the running summary written after that scene."""

    @classmethod
    def of(cls, items: Mapping[int, RunningSummary]) -> SummariesFile:
        """The file of ``items`` by scene id. Summaries kept over their word budget (flagged by the
        stage) are written as they are: the budget is the stage's check, not the file's."""
        return cls.model_validate({str(k): v for k, v in sorted(items.items())}, context=_KEPT)


class InstructionsFile(RootModel[dict[str, Instruction]]):
    """``07_instructions.json``: scene id -> the scene's instruction."""

    @classmethod
    def of(cls, items: Mapping[int, Instruction]) -> InstructionsFile:
        """The file of ``items`` by scene id (over-budget instructions kept and flagged, as above)."""
        return cls.model_validate({str(k): v for k, v in sorted(items.items())}, context=_KEPT)


class LLMFlag(Record):
    """An item kept over budget, or replaced by a fallback, in an LLM stage."""

    stage: str
    item: str
    reason: str


class FlagsFile(RootModel[list[LLMFlag]]):
    """``llm_flags.json``: every flagged item of one book."""

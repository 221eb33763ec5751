"""Hierarchical outline: seed -> acts (titles, summaries, chapter titles) -> one scene Instruction per scene.

The LLM answers are schema-constrained with list lengths fixed by the recipe (``create_model`` narrows the
packaged schemas per act), so the model cannot return too few or too many acts, chapters or scenes. The
resulting :class:`Outline` is saved as ``outline.json`` and ``outline.yaml``; both can be edited by hand
and passed back with ``--outline FILE``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, model_validator

from ..errors import NovelcraftError
from ..io import atomic_write_text, dumps_json
from ..llm.answers import Verdict, token_budget_gate
from ..llm.tasks import Task
from ..models import Instruction, Record, WorldContext
from ..prompts import PromptTemplate, field_guide
from ..tokens import TokenCounter
from .seed import StorySeed

Title = Annotated[str, Field(min_length=1, max_length=80)]


# --------------------------------------------------------------------------- LLM answer schemas


class ActSketch(Record):
    """One act of the act plan."""

    title: str = Field(..., min_length=1, max_length=80, description="the act's title")
    summary: str = Field(..., min_length=1, max_length=480, description="what happens in the act (at most 70 words)")
    chapter_titles: list[Title] = Field(
        ..., min_length=1, max_length=100, description="titles of the act's chapters, in order"
    )


class ActPlan(Record):
    """The answer of the act-plan call."""

    acts: list[ActSketch] = Field(..., min_length=1, max_length=12)


class ActScenes(Record):
    """The answer of one act's scene-goal call: one Instruction per scene, in order."""

    scenes: list[Instruction] = Field(..., min_length=1, max_length=500)


@functools.cache
def act_plan_schema(chapters_per_act: tuple[int, ...], base: type[ActPlan] = ActPlan) -> type[ActPlan]:
    """``base`` with exactly ``len(chapters_per_act)`` acts; act *i*'s chapter list is not length-checked
    by JSON Schema (one item schema serves all acts), so the gate checks it."""
    n = len(chapters_per_act)
    longest = max(chapters_per_act)
    sketch = create_model(
        "ActSketch",
        __base__=ActSketch,
        chapter_titles=(list[Title], Field(..., min_length=min(chapters_per_act), max_length=longest)),
    )
    return create_model(base.__name__, __base__=base, acts=(list[sketch], Field(..., min_length=n, max_length=n)))


@functools.cache
def act_scenes_schema(n_scenes: int, base: type[ActScenes] = ActScenes) -> type[ActScenes]:
    """``base`` with exactly ``n_scenes`` scene instructions."""
    return create_model(
        base.__name__, __base__=base, scenes=(list[Instruction], Field(..., min_length=n_scenes, max_length=n_scenes))
    )


# --------------------------------------------------------------------------- the outline record


class OutlineAct(Record):
    """One act of an outline: its number, title and summary."""

    index: int = Field(..., ge=1)
    title: str = Field(..., min_length=1)
    summary: str = ""


class OutlineScene(Record):
    """One scene of the outline: where it sits (act, chapter) and the instruction that prompts it."""

    index: int = Field(..., ge=1, description="1-based position in the novel")
    act: int = Field(..., ge=1)
    chapter: int = Field(..., ge=1)
    chapter_title: str = Field(..., min_length=1)
    target_words: int = Field(..., ge=1, description="the length the scene is asked to have, in words")
    instruction: Instruction


class Outline(Record):
    """The plan of one novel; ``outline.yaml`` is meant to be edited by hand and re-used."""

    version: Literal[1] = 1
    title: str = Field(..., min_length=1)
    acts: list[OutlineAct] = Field(..., min_length=1)
    scenes: list[OutlineScene] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Outline:
        if [a.index for a in self.acts] != list(range(1, len(self.acts) + 1)):
            raise ValueError("acts must be numbered 1, 2, ... in order")
        if [s.index for s in self.scenes] != list(range(1, len(self.scenes) + 1)):
            raise ValueError("scenes must be numbered 1, 2, ... in order")
        last_act, last_chapter = 1, 1
        for s in self.scenes:
            if s.act > len(self.acts):
                raise ValueError(f"scene {s.index}: act {s.act} does not exist")
            if s.act < last_act or s.chapter < last_chapter:
                raise ValueError(f"scene {s.index}: acts and chapters must not go backwards")
            last_act, last_chapter = s.act, s.chapter
        return self

    def chapter_titles(self) -> dict[int, str]:
        """Chapter number -> title (the first scene of a chapter names it)."""
        out: dict[int, str] = {}
        for s in self.scenes:
            out.setdefault(s.chapter, s.chapter_title)
        return out


def read_outline(path: str | Path) -> Outline:
    """Read an outline file (``.json``, ``.yaml`` or ``.yml``). Word budgets of hand-edited instructions are
    not enforced (an over-long instruction only costs prompt tokens)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise NovelcraftError(f"cannot read outline ({exc})", path=path, step="outline") from None
    try:
        return Outline.model_validate(data, context={"word_budgets": False})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(outline)"
        raise NovelcraftError(f"{loc}: {err['msg'].removeprefix('Value error, ')}", path=path, step="outline") from None


def write_outline(outline: Outline, folder: str | Path) -> list[Path]:
    """``outline.json`` and ``outline.yaml`` in ``folder`` (atomically)."""
    folder = Path(folder)
    data = outline.model_dump(mode="json")
    return [
        atomic_write_text(folder / "outline.json", dumps_json(data)),
        atomic_write_text(
            folder / "outline.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        ),
    ]


# --------------------------------------------------------------------------- pure planning helpers


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` items into ``min(parts, total)`` consecutive groups differing by at most one (earlier first).

    >>> split_evenly(10, 3)
    [4, 3, 3]
    """
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def chapters_per_act(scenes_per_act: Sequence[int], scenes_per_chapter: int) -> list[int]:
    """Chapters each act needs for its scenes, ``scenes_per_chapter`` to a chapter."""
    return [math.ceil(n / scenes_per_chapter) for n in scenes_per_act]


def scene_target_words(seed: StorySeed, n_scenes: int, low: int, high: int) -> int:
    """Words asked of each scene: the seed's novel length spread over its scenes, kept within [low, high];
    the middle of the range when the seed gives no length."""
    if seed.target_words:
        return max(low, min(high, round(seed.target_words / n_scenes)))
    return (low + high) // 2


def assemble_outline(
    seed: StorySeed,
    plan: ActPlan,
    act_scenes: Sequence[Sequence[Instruction]],
    *,
    scenes_per_chapter: int,
    target_words: int,
) -> Outline:
    """The :class:`Outline` from the act plan and each act's instructions (chapters numbered across acts)."""
    acts = [OutlineAct(index=i + 1, title=a.title, summary=a.summary) for i, a in enumerate(plan.acts)]
    scenes: list[OutlineScene] = []
    chapter_base = 0
    for a_idx, (sketch, instructions) in enumerate(zip(plan.acts, act_scenes), start=1):
        n_chapters = math.ceil(len(instructions) / scenes_per_chapter)
        for j, ins in enumerate(instructions):
            c = j // scenes_per_chapter
            title = sketch.chapter_titles[min(c, len(sketch.chapter_titles) - 1)]
            scenes.append(
                OutlineScene(
                    index=len(scenes) + 1,
                    act=a_idx,
                    chapter=chapter_base + c + 1,
                    chapter_title=title,
                    target_words=target_words,
                    instruction=ins,
                )
            )
        chapter_base += n_chapters
    return Outline.model_validate(
        {"title": seed.title, "acts": [a.model_dump() for a in acts], "scenes": [s.model_dump() for s in scenes]},
        context={"word_budgets": False},
    )


# --------------------------------------------------------------------------- LLM tasks


def world_context_from_premise_task(
    key: str,
    seed: StorySeed,
    prompt: PromptTemplate,
    counter: TokenCounter,
    *,
    budget_tokens: int,
    max_tokens: int,
    compress_attempts: int,
) -> Task:
    """The task "world context of this premise" (WorldContext schema, compressed to ``budget_tokens``)."""
    values = dict(
        title=seed.title,
        premise=seed.premise.strip(),
        characters=seed.characters_text(),
        notes=(seed.notes or "(none)").strip(),
        field_guide=field_guide(prompt.schema),
        budget_tokens=budget_tokens,
    )

    return Task(
        key=key,
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=max_tokens,
        gate=token_budget_gate(counter.count, budget_tokens, "world context"),
        feedback=prompt.feedback(**values),
        compress_attempts=compress_attempts,
    )


def act_plan_task(
    key: str,
    seed: StorySeed,
    world_context: str,
    prompt: PromptTemplate,
    *,
    scenes_per_act: Sequence[int],
    scenes_per_chapter: int,
    max_tokens: int,
    compress_attempts: int,
) -> Task:
    """The task "acts of this novel": titles, summaries and exactly the right number of chapter titles."""
    chapters = chapters_per_act(scenes_per_act, scenes_per_chapter)
    layout = "\n".join(
        f"- Act {i + 1}: {n} scenes, {c} chapter title{'s' if c > 1 else ''}"
        for i, (n, c) in enumerate(zip(scenes_per_act, chapters))
    )
    values = dict(
        title=seed.title,
        premise=seed.premise.strip(),
        characters=seed.characters_text(),
        notes=(seed.notes or "(none)").strip(),
        world_context=world_context,
        n_acts=len(scenes_per_act),
        n_scenes=sum(scenes_per_act),
        layout=layout,
    )
    schema = act_plan_schema(tuple(chapters), prompt.schema)

    def gate(value: Any) -> Verdict:
        for i, (act, want) in enumerate(zip(value.acts, chapters), start=1):
            if len(act.chapter_titles) != want:
                return Verdict.retry(f"act {i} needs exactly {want} chapter titles, got {len(act.chapter_titles)}")
        return Verdict.ok()

    return Task(
        key=key,
        messages=prompt.messages(**values),
        schema=schema,
        max_tokens=max_tokens,
        gate=gate,
        feedback=prompt.feedback(**values),
        compress_attempts=compress_attempts,
    )


def act_scenes_task(
    key: str,
    seed: StorySeed,
    world_context: str,
    plan: ActPlan,
    act_index: int,
    first_scene: int,
    n_scenes: int,
    total_scenes: int,
    prompt: PromptTemplate,
    *,
    scenes_per_chapter: int,
    tokens_per_scene: int,
    compress_attempts: int,
) -> Task:
    """The task "scene goals of act ``act_index`` (1-based)": exactly ``n_scenes`` Instructions."""
    act = plan.acts[act_index - 1]
    acts_text = "\n".join(f"- Act {i + 1}: {a.title}: {a.summary}" for i, a in enumerate(plan.acts))
    chapter_lines = []
    for j in range(n_scenes):
        c = j // scenes_per_chapter
        title = act.chapter_titles[min(c, len(act.chapter_titles) - 1)]
        chapter_lines.append(f'- scene {first_scene + j} of {total_scenes}: chapter "{title}"')
    values = dict(
        title=seed.title,
        premise=seed.premise.strip(),
        characters=seed.characters_text(),
        world_context=world_context,
        acts=acts_text,
        act_index=act_index,
        act_title=act.title,
        act_summary=act.summary,
        n_scenes=n_scenes,
        scene_list="\n".join(chapter_lines),
        field_guide=field_guide(Instruction),
    )
    return Task(
        key=key,
        messages=prompt.messages(**values),
        schema=act_scenes_schema(n_scenes, prompt.schema),
        max_tokens=tokens_per_scene * n_scenes + 64,
        feedback=prompt.feedback(**values),
        compress_attempts=compress_attempts,
    )


def render_world_context(value: WorldContext | str) -> str:
    """The world context as prompts show it (a model is rendered, text is kept)."""
    return value.render() if isinstance(value, WorldContext) else value


__all__ = [
    "ActPlan",
    "ActScenes",
    "ActSketch",
    "Outline",
    "OutlineAct",
    "OutlineScene",
    "act_plan_schema",
    "act_plan_task",
    "act_scenes_schema",
    "act_scenes_task",
    "assemble_outline",
    "chapters_per_act",
    "read_outline",
    "scene_target_words",
    "split_evenly",
    "world_context_from_premise_task",
    "write_outline",
]

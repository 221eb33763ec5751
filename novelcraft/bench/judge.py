"""Optional judge-based rubric: an LLM grades scenes against a packaged rubric prompt.

The judge is any callable ``judge(messages, schema) -> BaseModel``: ``messages`` are chat messages
(``{"role": ..., "content": ...}``) and ``schema`` the pydantic class the reply must validate against
(:class:`RubricScores`), so any backend - the engines of ``novelcraft.llm``, an API client, a scripted
test double - can grade. Every string field is length-bounded so schema-constrained decoding stays finite.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, Field, ValidationError

from ..chat_format import progress_percent
from ..errors import NovelcraftError
from ..models import Record
from .novel import Novel, NovelScene

log = logging.getLogger(__name__)

RUBRIC_CRITERIA = ("goal_adherence", "continuity", "prose", "dialogue", "characterization", "pacing", "originality")


class CriterionScore(Record):
    """The judge's grade of one rubric criterion: 1-10 and a one-line reason."""

    score: int = Field(..., ge=1, le=10)
    reason: str = Field(..., min_length=1, max_length=240)


class RubricScores(Record):
    """The judge's reply for one scene (the output schema of the rubric prompt)."""

    goal_adherence: CriterionScore
    continuity: CriterionScore
    prose: CriterionScore
    dialogue: CriterionScore
    characterization: CriterionScore
    pacing: CriterionScore
    originality: CriterionScore
    verdict: str = Field(..., min_length=1, max_length=300)

    def overall(self) -> float:
        """Mean of the criterion scores."""
        return sum(getattr(self, c).score for c in RUBRIC_CRITERIA) / len(RUBRIC_CRITERIA)


JudgeFn = Callable[[list[dict], type[BaseModel]], BaseModel]


@lru_cache(maxsize=1)
def rubric_template() -> tuple[string.Template, string.Template]:
    """(system, user) templates of ``novelcraft/resources/bench/judge_rubric.md``."""
    text = resources.files("novelcraft").joinpath("resources/bench/judge_rubric.md").read_text(encoding="utf-8")
    _, _, rest = text.partition("=== system ===\n")
    system, _, user = rest.partition("=== user ===\n")
    if not system.strip() or not user.strip():
        raise NovelcraftError(
            "rubric template lacks its system or user section",
            path="resources/bench/judge_rubric.md",
            step="bench.judge",
        )
    return string.Template(system.strip()), string.Template(user.strip())


def rubric_messages(
    scene: NovelScene, *, total: int, previous_summary: str | None, max_scene_words: int = 2500
) -> list[dict]:
    """The chat messages that ask the judge to grade ``scene`` (long scenes are cut to ``max_scene_words``)."""
    system, user = rubric_template()
    toks = scene.text.split()
    text = scene.text if len(toks) <= max_scene_words else " ".join(toks[:max_scene_words]) + " [...]"
    return [
        {"role": "system", "content": system.substitute()},
        {
            "role": "user",
            "content": user.substitute(
                index=scene.index,
                total=total,
                progress=progress_percent(scene.index, max(total, scene.index)),
                goal=scene.goal or "(no scene goal was given: grade goal_adherence 5)",
                previous_summary=previous_summary or "(this is the first scene)",
                scene=text,
            ),
        },
    ]


class JudgeResult(Record):
    """The judge's rubric scores of one scene and their mean."""

    scene_index: int
    scores: RubricScores
    overall: float


def judge_novel(
    novel: Novel, judge: JudgeFn, *, scenes: Sequence[int] | None = None, max_scenes: int | None = 8
) -> list[JudgeResult]:
    """Grade scenes of ``novel`` with ``judge``. ``scenes`` picks 1-based indices; otherwise up to
    ``max_scenes`` evenly spaced scenes (all when ``None``). The previous scene's running summary is the
    continuity context. A reply that is not a :class:`RubricScores` raises :class:`NovelcraftError`."""
    n = len(novel.scenes)
    if scenes is None:
        if max_scenes is None or max_scenes >= n:
            picks = list(range(1, n + 1))
        else:
            step = (n - 1) / max(1, max_scenes - 1)
            picks = sorted({1 + round(k * step) for k in range(max_scenes)})
    else:
        picks = list(scenes)
    out: list[JudgeResult] = []
    for idx in picks:
        if not 1 <= idx <= n:
            raise NovelcraftError(f"scene {idx} is out of range 1..{n}", path=novel.path, step="bench.judge")
        scene = novel.scenes[idx - 1]
        prev = novel.scenes[idx - 2].summary if idx > 1 else None
        reply = judge(rubric_messages(scene, total=n, previous_summary=prev), RubricScores)
        try:
            scores = (
                reply
                if isinstance(reply, RubricScores)
                else RubricScores.model_validate(reply.model_dump() if isinstance(reply, BaseModel) else reply)
            )
        except ValidationError as exc:
            raise NovelcraftError(
                f"scene {idx}: judge reply does not match the rubric ({exc.errors()[0]['msg']})",
                path=novel.path,
                step="bench.judge",
            ) from None
        out.append(JudgeResult(scene_index=idx, scores=scores, overall=scores.overall()))
        log.info("judged scene %d: %.1f", idx, scores.overall())
    return out


def judge_summary(results: Sequence[JudgeResult]) -> dict[str, float]:
    """Mean score per criterion and overall over the judged scenes (empty dict for no results)."""
    if not results:
        return {}
    out = {c: sum(getattr(r.scores, c).score for r in results) / len(results) for c in RUBRIC_CRITERIA}
    out["overall"] = sum(r.overall for r in results) / len(results)
    return out

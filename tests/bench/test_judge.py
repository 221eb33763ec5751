"""Judge rubric with a deterministic scripted judge callable."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from novelcraft.bench.judge import (
    RUBRIC_CRITERIA,
    RubricScores,
    judge_novel,
    judge_summary,
    rubric_messages,
    rubric_template,
)
from novelcraft.bench.novel import Novel, NovelScene
from novelcraft.errors import NovelcraftError


def _novel(n: int = 5) -> Novel:
    return Novel(
        title="T",
        scenes=[
            NovelScene(index=i, text=f"Scene {i} text about Mara.", goal=f"goal {i}", summary=f"summary after {i}")
            for i in range(1, n + 1)
        ],
    )


class ScriptedJudge:
    """Scores every criterion with the scene number it finds in the prompt; records the calls."""

    def __init__(self):
        self.calls: list[tuple[list[dict], type[BaseModel]]] = []

    def __call__(self, messages, schema):
        self.calls.append((messages, schema))
        idx = int(messages[1]["content"].split("Scene ", 1)[1].split(" ", 1)[0])
        return schema.model_validate(
            {c: {"score": min(10, idx), "reason": "scripted"} for c in RUBRIC_CRITERIA} | {"verdict": "ok"}
        )


def test_rubric_template_is_packaged_and_filled():
    system, user = rubric_template()
    msgs = rubric_messages(_novel().scenes[2], total=5, previous_summary="summary after 2")
    assert msgs[0]["role"] == "system" and "fiction editor" in msgs[0]["content"]
    body = msgs[1]["content"]
    assert (
        "Scene 3 of 5" in body and "goal 3" in body and "summary after 2" in body and "Scene 3 text about Mara." in body
    )
    assert "$" not in body


def test_judge_novel_with_scripted_judge():
    judge = ScriptedJudge()
    results = judge_novel(_novel(5), judge, max_scenes=3)
    assert [r.scene_index for r in results] == [1, 3, 5]
    assert all(schema is RubricScores for _, schema in judge.calls)
    assert "(this is the first scene)" in judge.calls[0][0][1]["content"]
    assert [r.overall for r in results] == [1.0, 3.0, 5.0]
    summary = judge_summary(results)
    assert summary["overall"] == pytest.approx(3.0) and summary["prose"] == pytest.approx(3.0)
    assert judge_summary([]) == {}


def test_judge_reply_must_match_the_rubric():
    class Wrong(BaseModel):
        score: int = 3

    with pytest.raises(NovelcraftError, match="does not match the rubric"):
        judge_novel(_novel(2), lambda messages, schema: Wrong(), max_scenes=None)
    with pytest.raises(NovelcraftError, match="out of range"):
        judge_novel(_novel(2), ScriptedJudge(), scenes=[3])


def test_rubric_scores_bounds():
    with pytest.raises(ValueError):
        RubricScores.model_validate({c: {"score": 11, "reason": "x"} for c in RUBRIC_CRITERIA} | {"verdict": "v"})

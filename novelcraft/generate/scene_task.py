"""A scene of a novel as an LLM task (free text, checked, retried with a note, the best answer kept) and the
record of the answer that was kept."""

from __future__ import annotations

from ..chat_format import scene_prompt
from ..llm.answers import Verdict
from ..llm.tasks import Task
from ..llm.types import LLMResponse
from .recipe import GenerateRecipe
from .scene import SceneCheck, better, check_scene, retry_note
from .state import NovelState, SceneRecord


def scene_task(recipe: GenerateRecipe, st: NovelState, position: int) -> Task:
    """Scene ``position`` of one novel as a free-text task: checked by :func:`check_scene`; a rejected answer
    is asked again with a retry note appended to the prompt; the best answer is kept when none passes."""
    cfg = recipe.scenes
    assert st.outline is not None and st.world_context_text is not None
    plan = st.outline.scenes[position - 1]
    summary = st.summary_before(position, recipe.opening_summary)
    world_context, system_prompt, total = st.world_context_text, st.system_prompt, st.total

    def prompt(note: str | None) -> list[dict[str, str]]:
        return scene_prompt(
            system_prompt, world_context, summary, position, total, plan.instruction.render(), note=note
        )

    def parse(resp: LLMResponse) -> tuple[SceneCheck, Verdict]:
        check = check_scene(
            resp.text,
            resp.finish_reason,
            min_words=cfg.min_words,
            max_repetition=cfg.max_repetition,
            trim_cut_off=cfg.trim_cut_off,
        )
        return check, (Verdict.ok() if check.ok else Verdict.retry(f"{check.problem}: {check.detail}"))

    def revise(verdict: Verdict, check: SceneCheck) -> tuple[list[dict[str, str]], list[str]]:
        note = retry_note(check, min_words=cfg.min_words, target_words=plan.target_words)
        return prompt(note), [note]

    return Task(
        key=f"{st.novel_id}/scene{position}",
        messages=prompt(None),
        schema=None,
        max_tokens=cfg.max_tokens,
        parse=parse,
        revise=revise,
        keep_best=lambda old, new: better(old, new) is new,
        context=[],
    )


def scene_record(
    position: int, check: SceneCheck, resp: LLMResponse, attempts: int, notes: list[str], flag: str | None = None
) -> SceneRecord:
    """The state's record of the scene answer that was kept (its text, checks, notes, flag and costs)."""
    return SceneRecord(
        index=position,
        text=check.text,
        words=check.words,
        attempts=attempts,
        notes=list(notes),
        flagged=flag is not None,
        flag_reason=flag,
        trimmed=check.trimmed,
        prompt_tokens=resp.prompt_tokens,
        completion_tokens=resp.completion_tokens,
        seconds=resp.seconds,
    )

"""The running summary ("memory") task, shared by data prep (stage 6) and novel generation.

Both write the summary *after* a scene from the world context, the previous summary and the scene text,
with the same prompt template, schema, budget gate and compress-and-retry; only the key and the engine
differ. The previous summary is shown headed ``NOVEL PROGRESS: XX%`` exactly as a training record shows it
before this scene (:func:`~novelcraft.chat_format.progress_percent`), and the budget is checked on the summary
rendered with the progress it will carry in front of the next scene.
"""

from __future__ import annotations

from .chat_format import progress_done, progress_percent
from .gates import gate_chain, grounded_problem, keep_latest, listed_names, plain_prose_problem, prose_fields
from .llm.answers import token_budget_gate
from .llm.tasks import Task
from .models import RunningSummary
from .prompts import PromptTemplate, field_guide
from .tokens import TokenCounter


def summary_progress_before(index: int, total: int) -> int:
    """NOVEL PROGRESS shown with the summary in front of scene ``index`` (0-based) of ``total``."""
    return progress_percent(index + 1, total)


def summary_progress_after(index: int, total: int) -> int:
    """NOVEL PROGRESS the summary written after scene ``index`` (0-based) carries into the next prompt."""
    return progress_done(index + 1, total)


def make_summary_task(
    key: str,
    *,
    world_context: str | None,
    scene_text: str,
    position: int,
    total: int,
    previous: RunningSummary | None,
    prompt: PromptTemplate,
    counter: TokenCounter,
    budget_tokens: int,
    max_tokens: int,
    compress_attempts: int,
    section: str = "reference",
) -> Task:
    """The task "running summary after this scene" (``position`` 0-based of ``total`` scenes in the chain).

    The prompt holds the world context, the scene, then the previous summary headed ``NOVEL PROGRESS: XX%``
    (the share of the chain written before this scene). Quality gates (:mod:`novelcraft.gates`): every field
    plain prose, the active characters found in the scene, the previous summary or the world context; then
    the budget gate compresses while the summary rendered with the progress after this scene is over
    ``budget_tokens``. An answer that never passes a quality gate is kept flagged.
    """
    progress_after = summary_progress_after(position, total)
    previous_block = (
        prompt.render("previous", previous=previous.render(summary_progress_before(position, total)))
        if previous is not None
        else prompt.render("previous_first")
    )
    values = dict(
        world_context=world_context or "(no world context)",
        previous_block=previous_block,
        scene=scene_text,
        section=section,
        field_guide=field_guide(prompt.schema),
        budget_tokens=budget_tokens,
    )
    seen = [scene_text, previous.render() if previous is not None else "", world_context or ""]
    gate = gate_chain(
        lambda v: plain_prose_problem(prose_fields(v)),
        lambda v: grounded_problem("active_characters", listed_names(v.active_characters), seen),
        budget=token_budget_gate(counter.count, budget_tokens, "summary", lambda v: v.render(progress_after)),
    )
    return Task(
        key=key,
        messages=prompt.messages(**values),
        schema=prompt.schema,
        max_tokens=max_tokens,
        gate=gate,
        feedback=prompt.feedback(**values),
        compress_attempts=compress_attempts,
        keep_best=keep_latest,
    )

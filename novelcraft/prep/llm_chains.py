"""Stages 6 and 7 of one book, as steps of its flow: the running-summary chains (narrative and reference;
direct, or digest then chain) with each scene's instruction beside its summary, so the prompts' shared
prefix (system, world context, scene) is served from the prefix cache."""

from __future__ import annotations

from collections.abc import Generator

from ..llm.attempts import Outcome, Task
from ..models import GlobalUpdate, RunningSummary, Scene, SceneDigest
from ..prompts import PromptTemplate
from ..tokens import TokenCounter
from .llm_runner import BookState, SaveFile, StageRunner
from .llm_tasks import digest_task, global_task, instruction_task, summary_task
from .stage_files import InstructionsFile, SummariesFile

#: steps of a book's flow: yields tasks, is sent their outcomes.
Steps = Generator[list[Task], list[Outcome], None]
Chain = tuple[list[Scene], PromptTemplate]


def _interleave(first: list[Task], second: list[Task]) -> list[Task]:
    """``first[0], second[0], first[1], ...``: a scene's summary and instruction next to each other in the
    batch, so the second is served from the prefix cache the first filled."""
    if not first or not second:
        return first + second
    return [t for pair in zip(first, second) for t in pair]


def summaries_and_instructions(
    r: StageRunner,
    s: BookState,
    counter: TokenCounter,
    save: SaveFile,
    *,
    summaries: bool,
    instructions: bool,
) -> Steps:
    """One book's chains, step by step: step n asks every chain's summary after its scene n (it needs summary
    n-1) and scene n's instruction, in the same engine call; then the book's summary and instruction files."""
    narrative = [sc for sc in s.book.scenes if not sc.is_reference]
    reference = [sc for sc in s.book.scenes if sc.is_reference]
    chains: list[Chain] = [(narrative, r.prompts["summary"])] if narrative else []
    chains += [(reference, r.prompts["reference_summary"])] if reference else []
    previous: list[RunningSummary | None] = [None] * len(chains)
    digests: dict[tuple[int, int], SceneDigest] = {}
    if summaries and r.recipe.stages.summaries.mode == "digest":
        digests = yield from _digest_step(r, s, chains, counter, instructions=instructions)
        instructions = False  # asked in the digest step, beside the digests (their prompts share the prefix)

    def summary_of(i: int, chain: Chain, step: int) -> Task:
        scenes, prompt = chain
        if (i, step) in digests:
            return global_task(
                s.book,
                scenes[step],
                digests[(i, step)],
                step,
                len(scenes),
                previous[i],
                r.prompts["summary_global"],
                counter,
                r.recipe,
            )
        return summary_task(s.book, scenes[step], step, len(scenes), previous[i], prompt, counter, r.recipe)

    instruction_prompt = r.prompts["instruction"]
    for step in range(max((len(c[0]) for c in chains), default=0)):
        live = [(i, c) for i, c in enumerate(chains) if step < len(c[0])]
        summary_tasks = r.tag("summaries", [summary_of(i, c, step) for i, c in live] if summaries else [])
        instruction_tasks = r.tag(
            "instructions",
            [instruction_task(s.book, c[0][step], instruction_prompt, counter, r.recipe) for _, c in live]
            if instructions
            else [],
        )
        outcomes = yield _interleave(summary_tasks, instruction_tasks)
        by_key = {o.key: o for o in outcomes}
        for (i, (scenes, _)), t in zip(live, summary_tasks):
            # a summary that stayed invalid carries the previous one forward (none yet: the scene has none)
            value = r.accept("summaries", s, by_key[t.key])
            if isinstance(value, GlobalUpdate):
                value = value.with_digest(digests[(i, step)])
            value = value or previous[i]
            if value is None:
                continue
            previous[i] = value
            s.summaries[scenes[step].scene_id] = value
        for (_, (scenes, _)), t in zip(live, instruction_tasks):
            value = r.accept("instructions", s, by_key[t.key])
            if value is not None:
                s.instructions[scenes[step].scene_id] = value
    for sc in s.book.scenes:
        if sc.scene_id in s.summaries:
            sc.running_summary = s.summaries[sc.scene_id].render()
        if sc.scene_id in s.instructions:
            sc.instruction = s.instructions[sc.scene_id].render()
    if summaries:
        save("06_summaries.json", s.book_dir, SummariesFile.of(s.summaries))
    if r.recipe.stages.instructions.enabled:
        save("07_instructions.json", s.book_dir, InstructionsFile.of(s.instructions))


def _digest_step(
    r: StageRunner, s: BookState, chains: list[Chain], counter: TokenCounter, *, instructions: bool
) -> Generator[list[Task], list[Outcome], dict[tuple[int, int], SceneDigest]]:
    """Digest mode: every narrative scene's digest (and, with ``instructions``, every scene's instruction
    beside it) in one step; returns the digests by (chain, position). A scene whose digest stayed invalid is
    summarised directly instead."""
    digest_prompt, instruction_prompt = r.prompts["summary_digest"], r.prompts["instruction"]
    jobs = [(i, k, sc) for i, (scenes, _) in enumerate(chains) for k, sc in enumerate(scenes)]
    digest_jobs = [(i, k, sc) for i, k, sc in jobs if not sc.is_reference]
    digest_tasks = r.tag("summaries", [digest_task(s.book, sc, digest_prompt, r.recipe) for _, _, sc in digest_jobs])
    instruction_tasks = r.tag(
        "instructions",
        [instruction_task(s.book, sc, instruction_prompt, counter, r.recipe) for _, _, sc in jobs]
        if instructions
        else [],
    )
    twins = {t.key: t for t in instruction_tasks}
    order: list[Task] = []
    for (_, _, sc), t in zip(digest_jobs, digest_tasks):
        order.append(t)
        twin = twins.pop(f"{s.book.meta.book_id}/instruction/scene{sc.scene_id}", None)
        if twin is not None:
            order.append(twin)
    order += list(twins.values())  # reference scenes' instructions
    outcomes = yield order
    by_key = {o.key: o for o in outcomes}
    digests: dict[tuple[int, int], SceneDigest] = {}
    for (i, k, _), t in zip(digest_jobs, digest_tasks):
        o = by_key[t.key]
        if o.value is not None:
            digests[(i, k)] = o.value
            if o.flagged:
                s.flag("summaries", o.key, o.flag_reason or "flagged")
    for (_, _, sc), t in zip(jobs, instruction_tasks):
        value = r.accept("instructions", s, by_key[t.key])
        if value is not None:
            s.instructions[sc.scene_id] = value
    return digests

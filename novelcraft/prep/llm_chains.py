"""Stage 6 and 7 in lockstep: the running-summary chains of all books (direct, or digest then chain) with each
scene's instruction beside its summary, so the prompts' shared prefix (system, world context, scene) is
served from the prefix cache."""

from __future__ import annotations

from ..llm.tasks import Task
from ..models import GlobalUpdate, RunningSummary, Scene, SceneDigest
from ..prompts import PromptTemplate
from ..tokens import TokenCounter
from .llm_runner import BookState, SaveFile, StageRunner
from .llm_tasks import digest_task, global_task, instruction_task, summary_task
from .stage_files import InstructionsFile, SummariesFile


def summaries_and_instructions(
    r: StageRunner,
    states: list[BookState],
    counter: TokenCounter,
    save: SaveFile,
    *,
    summaries: bool,
    instructions: bool,
) -> None:
    """Lockstep over every chain (narrative and reference, per book): step n of all chains in one batch -
    the summary after scene n (it needs summary n-1) and scene n's instruction, whose prompt shares the
    summary's prefix (system, world context, scene), in the same engine calls."""
    chains: list[tuple[BookState, list[Scene], PromptTemplate]] = []
    for s in states:
        narrative = [sc for sc in s.book.scenes if not sc.is_reference]
        reference = [sc for sc in s.book.scenes if sc.is_reference]
        if narrative:
            chains.append((s, narrative, r.prompts["summary"]))
        if reference:
            chains.append((s, reference, r.prompts["reference_summary"]))
    previous: dict[int, RunningSummary | None] = {i: None for i in range(len(chains))}
    steps = max((len(c[1]) for c in chains), default=0)
    instruction_prompt = r.prompts["instruction"]
    digests: dict[tuple[int, int], SceneDigest] = {}
    if summaries and r.recipe.stages.summaries.mode == "digest":
        digests = _digest_round(r, chains, counter, instructions=instructions)
        instructions = False  # done in the digest round, beside the digests (their prompts share the prefix)

    def summary_of(i: int, c: tuple[BookState, list[Scene], PromptTemplate], step: int) -> Task:
        s, scenes, prompt = c
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

    for step in range(steps):
        live = [(i, c) for i, c in enumerate(chains) if step < len(c[1])]
        summary_tasks = [summary_of(i, c, step) for i, c in live] if summaries else []
        instruction_tasks = (
            [instruction_task(c[0].book, c[1][step], instruction_prompt, counter, r.recipe) for _, c in live]
            if instructions
            else []
        )
        # each scene's summary then its instruction: neighbours in the batch, so the shared prefix is reused
        order = [t for pair in zip(summary_tasks, instruction_tasks) for t in pair] or summary_tasks + instruction_tasks
        parts = [("summaries", summary_tasks), ("instructions", instruction_tasks)]
        done = r.run_joint([(name, ts) for name, ts in parts if ts], f"scenes {step + 1}/{steps}", order=order)
        by_stage = dict(zip([name for name, ts in parts if ts], done))
        for (i, (s, scenes, _)), o in zip(live, by_stage.get("summaries", [])):
            # a summary that stayed invalid carries the previous one forward (none yet: the scene has none)
            value = r.accept("summaries", s, o)
            if isinstance(value, GlobalUpdate):
                value = value.with_digest(digests[(i, step)])
            value = value or previous[i]
            if value is None:
                continue
            previous[i] = value
            s.summaries[scenes[step].scene_id] = value
        for (_, (s, scenes, _)), o in zip(live, by_stage.get("instructions", [])):
            value = r.accept("instructions", s, o)
            if value is not None:
                s.instructions[scenes[step].scene_id] = value
    for s in states:
        for sc in s.book.scenes:
            if sc.scene_id in s.summaries:
                sc.running_summary = s.summaries[sc.scene_id].render()
            if sc.scene_id in s.instructions:
                sc.instruction = s.instructions[sc.scene_id].render()
        if summaries:
            save("06_summaries.json", s.book_dir, SummariesFile.of(s.summaries))
        if instructions:
            save("07_instructions.json", s.book_dir, InstructionsFile.of(s.instructions))


def _digest_round(
    r: StageRunner,
    chains: list[tuple[BookState, list[Scene], PromptTemplate]],
    counter: TokenCounter,
    *,
    instructions: bool,
) -> dict[tuple[int, int], SceneDigest]:
    """Digest mode: every narrative scene's digest (and, with ``instructions``, every scene's instruction
    beside it) in one round; returns the digests by (chain, position). A scene whose digest stayed invalid
    is summarised directly instead."""
    digest_prompt, instruction_prompt = r.prompts["summary_digest"], r.prompts["instruction"]
    jobs: list[tuple[int, int, BookState, Scene]] = [
        (i, k, s, sc) for i, (s, scenes, _) in enumerate(chains) for k, sc in enumerate(scenes)
    ]
    digest_jobs = [(i, k, s, sc) for i, k, s, sc in jobs if not sc.is_reference]
    digest_tasks = [digest_task(s.book, sc, digest_prompt, r.recipe) for _, _, s, sc in digest_jobs]
    instruction_tasks = (
        [instruction_task(s.book, sc, instruction_prompt, counter, r.recipe) for _, _, s, sc in jobs]
        if instructions
        else []
    )
    by_key = {t.key: t for t in instruction_tasks}
    order: list[Task] = []
    for (_, _, s, sc), t in zip(digest_jobs, digest_tasks):
        order.append(t)
        twin = by_key.pop(f"{s.book.meta.book_id}/instruction/scene{sc.scene_id}", None)
        if twin is not None:
            order.append(twin)
    order += list(by_key.values())  # reference scenes' instructions
    parts = [("summaries", digest_tasks), ("instructions", instruction_tasks)]
    done = dict(zip(["summaries", "instructions"], r.run_joint(parts, "scene digests", order=order)))
    digests: dict[tuple[int, int], SceneDigest] = {}
    for (i, k, s, _), o in zip(digest_jobs, done["summaries"]):
        if o.value is not None:
            digests[(i, k)] = o.value
            if o.flagged:
                s.flag("summaries", o.key, o.flag_reason or "flagged")
    for (_, _, s, sc), o in zip(jobs, done["instructions"]):
        value = r.accept("instructions", s, o)
        if value is not None:
            s.instructions[sc.scene_id] = value
    return digests

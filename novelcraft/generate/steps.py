"""The steps of novel generation, each a batch across novels: world contexts, outlines, scenes, summaries.

Requests sharing a prefix (persona + world context of one seed) are sent next to each other, and every
prompt puts that shared part first, for prefix caching. After each step every novel's checkpoint
(:mod:`novelcraft.generate.state`) is written atomically; structured answers are also kept in
``llm/*.jsonl`` stores keyed by content, so a crashed run continues and repeats no finished call.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import NovelcraftError
from ..llm.debug import DebugLog
from ..llm.tasks import Outcome, Task, run_tasks
from ..llm.types import Engine, LLMRequest, LLMResponse
from ..memory import make_summary_task
from ..models import Instruction
from ..prompts import load_prompt
from ..runs import Manifest, ResultStore
from ..stats import StageStats
from ..tokens import TokenCounter
from .outline import (
    ActPlan,
    Outline,
    act_plan_task,
    act_scenes_task,
    assemble_outline,
    scene_target_words,
    split_evenly,
    world_context_from_premise_task,
    write_outline,
)
from .recipe import GenerateRecipe
from .scene import SceneCheck
from .scene_task import scene_record, scene_task
from .state import NovelState, save_state

log = logging.getLogger(__name__)

PROMPTS = ("seed_world_context", "outline_acts", "outline_scenes", "summary")


class GenerateError(NovelcraftError):
    """A novel could not advance (names the seed file and the step, e.g. ``scene 4``)."""


@dataclasses.dataclass
class NovelHandle:
    """A novel being generated: its state and its folder."""

    state: NovelState
    dir: Path

    @property
    def seed_path(self) -> str:
        """The seed file the novel was started from."""
        return self.state.seed_path


def _fail(
    novels: Sequence[NovelHandle], step: str, cause: str, cls: type[NovelcraftError] = GenerateError
) -> NovelcraftError:
    others = f" (and {len(novels) - 1} more novel(s))" if len(novels) > 1 else ""
    return cls(
        f"{novels[0].state.novel_id}{others}: {cause}; finished steps are checkpointed, re-run with --resume",
        path=novels[0].seed_path,
        step=step,
    )


def checkpoint(novels: Sequence[NovelHandle], manifest: Manifest) -> None:
    """Write each novel's checkpoint, then its entry in the run's manifest (with the key of its settings)."""
    for n in novels:
        path = save_state(n.state, n.dir)
        manifest.record(f"novels/{n.state.novel_id}", n.state.key, [path], settings=n.state.settings)


class Meter:
    """Passes batches to the engine and adds up tokens and seconds per request key (for the trace)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = getattr(engine, "name", type(engine).__name__)
        self.by_key: dict[str, list[float]] = {}

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answer ``requests`` with the wrapped engine, adding their tokens and seconds per key."""
        responses = self.engine.generate(requests)
        for r in responses:
            acc = self.by_key.setdefault(r.key, [0, 0, 0.0])
            acc[0] += r.prompt_tokens
            acc[1] += r.completion_tokens
            acc[2] += r.seconds
        return responses

    def close(self) -> None:  # the caller owns the engine
        """Nothing: the caller owns the wrapped engine."""
        pass


class Stepper:
    """Advances many novels in lockstep: world contexts, outlines, then scene n and its summary for each n."""

    def __init__(
        self, recipe: GenerateRecipe, engine: Engine, counter: TokenCounter, run_dir: Path, progress: bool
    ) -> None:
        self.recipe = recipe
        self.engine = engine
        self.counter = counter
        self.run_dir = run_dir
        self.progress = progress
        self.prompts = {n: load_prompt(n, recipe.prompts_dir) for n in PROMPTS}
        self.stats = {k: StageStats() for k in ("world_context", "outline", "scenes", "summaries")}
        self.debug = DebugLog(run_dir / "llm_debug.jsonl" if recipe.llm.debug_log else None)
        self.steps: list[dict[str, Any]] = []
        self.meter = Meter(engine)
        self.manifest = Manifest(run_dir / "manifest.json")

    def tasks(self, stage: str, tasks: list[Task]) -> list[Outcome]:
        """Run ``tasks`` of ``stage`` through the metered engine with the recipe's retry settings."""
        retry = self.recipe.llm.retry
        return run_tasks(
            self.meter,
            tasks,
            attempts=self.recipe.attempts,
            transport_attempts=retry.attempts,
            backoff_s=retry.backoff_s,
            max_backoff_s=retry.max_backoff_s,
            store=ResultStore(self.run_dir / "llm" / f"{stage}.jsonl"),
            salt="|".join(p.digest for p in self.prompts.values()),
            engine_identity=self.recipe.llm.identity(),
            stats=self.stats["outline" if stage.startswith("outline") else stage],
            debug=self.debug,
        )

    def save(self, novels: Sequence[NovelHandle]) -> None:
        """Checkpoint each novel, then record it in the run's manifest with the key of its settings."""
        checkpoint(novels, self.manifest)

    # -- world context ------------------------------------------------------------------------------

    def world_contexts(self, novels: Sequence[NovelHandle]) -> None:
        """Give every novel without one its world context (the seed's, else the model's, in one batch)."""
        cfg = self.recipe.world_context
        need = [n for n in novels if n.state.world_context_text is None]
        for n in need:
            if n.state.seed.world_context is not None:
                n.state.world_context = n.state.seed.world_context
                n.state.world_context_text = n.state.world_context.render()
                tokens = self.counter.count(n.state.world_context_text)
                if tokens > cfg.budget_tokens:
                    raise GenerateError(
                        f"world_context: the rendered world context is {tokens} tokens; "
                        f"the budget is {cfg.budget_tokens}",
                        path=n.seed_path,
                        step="seed",
                    )
        need = [n for n in need if n.state.world_context_text is None]
        if not need:
            self.save(novels)
            return
        # Samples of one seed share one world context: one task per seed.
        by_seed: dict[str, list[NovelHandle]] = {}
        for n in need:
            by_seed.setdefault(n.state.seed.digest(), []).append(n)
        groups = list(by_seed.values())
        tasks = [
            world_context_from_premise_task(
                f"{g[0].state.novel_id}/world_context",
                g[0].state.seed,
                self.prompts["seed_world_context"],
                self.counter,
                budget_tokens=cfg.budget_tokens,
                max_tokens=cfg.max_tokens,
                compress_attempts=cfg.compress_attempts,
            )
            for g in groups
        ]
        try:
            outcomes = self.tasks("world_context", tasks)
        except NovelcraftError as exc:
            raise _fail(need, "world context", exc.cause) from None
        for g, o in zip(groups, outcomes):
            if o.value is None:
                raise _fail(g, "world context", f"no valid world context after {o.attempts} answers: {o.error}")
            for n in g:
                n.state.world_context = o.value
                n.state.world_context_text = o.value.render()
                n.state.world_context_flagged = o.flagged
        self.save(novels)

    # -- outline ------------------------------------------------------------------------------------

    def outlines(self, novels: Sequence[NovelHandle], override: Outline | None) -> None:
        """Give every novel without one its outline (``override`` if given): acts, then every act's scenes."""
        need = [n for n in novels if n.state.outline is None]
        if override is not None:
            for n in need:
                n.state.outline = override
                write_outline(override, n.dir)
            self.save(novels)
            return
        if not need:
            return
        cfg = self.recipe.outline
        plans: dict[str, tuple[list[int], int]] = {}
        for n in need:
            total = n.state.seed.target_scenes or cfg.scenes
            plans[n.state.novel_id] = (split_evenly(total, cfg.acts), total)
        tasks = [
            act_plan_task(
                f"{n.state.novel_id}/outline/acts",
                n.state.seed,
                n.state.world_context_text or "",
                self.prompts["outline_acts"],
                scenes_per_act=plans[n.state.novel_id][0],
                scenes_per_chapter=cfg.scenes_per_chapter,
                max_tokens=cfg.acts_max_tokens,
                compress_attempts=cfg.compress_attempts,
            )
            for n in need
        ]
        try:
            outcomes = self.tasks("outline_acts", tasks)
        except NovelcraftError as exc:
            raise _fail(need, "outline", exc.cause) from None
        for n, o in zip(need, outcomes):
            if o.value is None:
                raise _fail([n], "outline", f"no valid act plan within limits after {o.attempts} answers: {o.error}")
        acts: dict[str, ActPlan] = {n.state.novel_id: o.value for n, o in zip(need, outcomes)}
        jobs: list[tuple[NovelHandle, int]] = []
        scene_tasks: list[Task] = []
        for n in need:
            sizes, total = plans[n.state.novel_id]
            first = 1
            for a, size in enumerate(sizes, start=1):
                scene_tasks.append(
                    act_scenes_task(
                        f"{n.state.novel_id}/outline/act{a}",
                        n.state.seed,
                        n.state.world_context_text or "",
                        acts[n.state.novel_id],
                        a,
                        first,
                        size,
                        total,
                        self.prompts["outline_scenes"],
                        scenes_per_chapter=cfg.scenes_per_chapter,
                        tokens_per_scene=cfg.scene_goal_tokens,
                        compress_attempts=cfg.compress_attempts,
                    )
                )
                jobs.append((n, a))
                first += size
        try:
            outcomes = self.tasks("outline_scenes", scene_tasks)
        except NovelcraftError as exc:
            raise _fail(need, "outline", exc.cause) from None
        per_novel: dict[str, list[list[Instruction]]] = {}
        for (n, a), o in zip(jobs, outcomes):
            if o.value is None:
                raise _fail(
                    [n], "outline", f"act {a}: no valid scene goals within limits after {o.attempts} answers: {o.error}"
                )
            per_novel.setdefault(n.state.novel_id, []).append(list(o.value.scenes))
        sc = self.recipe.scenes
        for n in need:
            total = plans[n.state.novel_id][1]
            n.state.outline = assemble_outline(
                n.state.seed,
                acts[n.state.novel_id],
                per_novel[n.state.novel_id],
                scenes_per_chapter=cfg.scenes_per_chapter,
                target_words=scene_target_words(n.state.seed, total, sc.target_words_min, sc.target_words_max),
            )
            write_outline(n.state.outline, n.dir)
        self.save(novels)

    # -- scenes -------------------------------------------------------------------------------------

    def scenes(self, novels: Sequence[NovelHandle], position: int) -> None:
        """Scene ``position`` of every novel that needs it: one batch, then batches of retries."""
        cfg = self.recipe.scenes
        retry = self.recipe.llm.retry
        # Novels sharing persona and world context go next to each other (prefix caching).
        jobs = sorted(novels, key=lambda n: (n.state.system_prompt, n.state.world_context_text or ""))
        tasks = [scene_task(self.recipe, n.state, position) for n in jobs]
        t0 = time.perf_counter()
        try:
            outcomes = run_tasks(
                self.meter,
                tasks,
                attempts=cfg.attempts,
                transport_attempts=retry.attempts,
                backoff_s=retry.backoff_s,
                max_backoff_s=retry.max_backoff_s,
                engine_identity=self.recipe.llm.identity(),
                stats=self.stats["scenes"],
                debug=self.debug,
            )
        except NovelcraftError as exc:
            raise _fail(jobs, f"scene {position}", exc.cause) from None
        for n, o in zip(jobs, outcomes):
            check: SceneCheck = o.value
            assert o.response is not None
            if o.flagged:
                if self.recipe.on_failure == "error" or not check.text:
                    raise _fail([n], f"scene {position}", f"no acceptable scene: {o.flag_reason}")
                log.warning("%s scene %d kept and flagged: %s", n.state.novel_id, position, o.flag_reason)
            n.state.scenes.append(
                scene_record(
                    position,
                    check,
                    o.response,
                    o.attempts,
                    list(o.context or []),
                    flag=o.flag_reason if o.flagged else None,
                )
            )
        self.save(jobs)
        self._step(position, "scenes", len(jobs), time.perf_counter() - t0)

    # -- summaries ----------------------------------------------------------------------------------

    def summaries(self, novels: Sequence[NovelHandle], position: int) -> None:
        """Write the running summary after scene ``position`` of every novel, in one batch."""
        cfg = self.recipe.summaries
        prompt = self.prompts["summary"]
        tasks = []
        for n in novels:
            st = n.state
            assert st.outline is not None
            previous = next((s.summary for s in reversed(st.scenes[: position - 1]) if s.summary is not None), None)
            tasks.append(
                make_summary_task(
                    f"{st.novel_id}/summary/scene{position}",
                    world_context=st.world_context_text,
                    scene_text=st.scenes[position - 1].text,
                    position=position - 1,
                    total=st.total,
                    previous=previous,
                    prompt=prompt,
                    counter=self.counter,
                    budget_tokens=cfg.budget_tokens,
                    max_tokens=cfg.max_tokens,
                    compress_attempts=cfg.compress_attempts,
                    section=st.outline.scenes[position - 1].chapter_title,
                )
            )
        t0 = time.perf_counter()
        try:
            outcomes = self.tasks("summaries", tasks)
        except NovelcraftError as exc:
            raise _fail(novels, f"summary after scene {position}", exc.cause) from None
        seconds = time.perf_counter() - t0
        for n, o in zip(novels, outcomes):
            sc = n.state.scenes[position - 1]
            if o.value is None:
                if self.recipe.on_failure == "error":
                    raise _fail(
                        [n],
                        f"summary after scene {position}",
                        f"no valid summary after {o.attempts} answers: {o.error}",
                    )
                sc.summary_flagged, sc.summary_flag_reason = True, f"no valid summary (previous one carried): {o.error}"
            else:
                sc.summary = o.value
                sc.summary_flagged, sc.summary_flag_reason = o.flagged, o.flag_reason
            sc.summary_done = True
            prompt_tokens, completion_tokens, secs = self.meter.by_key.get(o.key, [0, 0, 0.0])
            sc.summary_prompt_tokens, sc.summary_completion_tokens = int(prompt_tokens), int(completion_tokens)
            sc.summary_seconds = round(secs, 3)
        self.save(novels)
        self._step(position, "summaries", len(novels), seconds)

    def _step(self, position: int, kind: str, novels: int, seconds: float) -> None:
        self.steps.append({"scene": position, "kind": kind, "novels": novels, "seconds": round(seconds, 3)})

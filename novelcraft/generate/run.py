"""``generate_novels``: story seeds -> world context -> outline -> scene loop with running summaries.

Many novels advance in lockstep, so each engine call is a batch across novels: the world contexts of
all seeds, then every act plan, then every act's scene goals, then for each step *n* scene *n* of every
novel (its retries in further batches), then the running summaries after those scenes. Requests sharing
a prefix (persona + world context of one seed) are sent next to each other, and every prompt puts that
shared part first, for prefix caching.

After each step every novel's checkpoint (:mod:`novelcraft.generate.state`) is written atomically;
structured answers are also kept in ``llm/*.jsonl`` stores keyed by content, so a crashed run continues
with ``resume=True`` and repeats no finished call.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..errors import NovelcraftError
from ..io import atomic_write_json, sha256_text
from ..llm.engine import Engine, LLMRequest, LLMResponse
from ..llm.structured import CallStats, DebugLog, Outcome, ResultStore, Task, run_tasks
from ..llmprep import make_summary_task
from ..models import Instruction
from ..prompts import PromptTemplate, load_prompt
from ..recipes import write_resolved_recipe
from ..tokens import TokenCounter
from .outline import (
    ActPlan,
    Outline,
    act_plan_task,
    act_scenes_task,
    assemble_outline,
    read_outline,
    scene_target_words,
    split_evenly,
    world_context_from_premise_task,
    write_outline,
)
from .output import write_novel_files
from .recipe import GenerateRecipe
from .scene import SceneCheck, better, check_scene, retry_note, scene_prompt
from .seed import StorySeed, load_seed, resolve_seed_paths
from .state import (
    NovelState,
    SceneRecord,
    adapter_digest,
    find_states,
    load_state,
    save_state,
    settings_diff,
    settings_key,
)

log = logging.getLogger(__name__)

PROMPTS = ("seed_world_context", "outline_acts", "outline_scenes", "summary")


class GenerateError(NovelcraftError):
    """A novel could not advance (names the seed file and the step, e.g. ``scene 4``)."""


@dataclasses.dataclass
class GenerateResult:
    """What a run produced: the novels' final states, where they are, and the run statistics."""

    run_dir: Path
    novels: list[NovelState]
    stats: dict[str, Any]

    def summary(self) -> str:
        lines = [f"{self.run_dir}: {len(self.novels)} novel(s)"]
        for n in self.novels:
            words = sum(s.words for s in n.scenes)
            flagged = sum(s.flagged for s in n.scenes)
            lines.append(
                f"  {n.novel_id}: {len(n.scenes)}/{n.total} scenes, {words} words"
                + (f", {flagged} flagged" if flagged else "")
                + f" -> {self.run_dir / 'novels' / n.novel_id}"
            )
        s = self.stats
        lines.append(f"  {s['seconds']:.1f} s; scene tokens {s['calls']['scenes']['completion_tokens']}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- settings and novels


def run_settings(recipe: GenerateRecipe, seed: StorySeed, sample: int, system_prompt: str, prompts: dict[str, PromptTemplate]) -> dict[str, Any]:
    """Everything that decides what a novel's next scene will be (hashed into the checkpoint key)."""
    llm = recipe.llm
    return {
        "seed": seed.digest(),
        "sample": sample,
        "system_prompt": sha256_text(system_prompt),
        "opening_summary": recipe.opening_summary,
        "llm": {
            "identity": llm.identity(),
            "backend": llm.backend,
            "model": llm.model,
            "served_model_name": llm.served_model_name,
            "adapter": llm.adapter,
            "adapter_sha256": adapter_digest(llm.adapter),
            "chat_template": sha256_text(Path(llm.chat_template).read_text(encoding="utf-8")) if llm.chat_template else None,
            "sampling": llm.sampling.model_dump(mode="json"),
        },
        "tokenizer": recipe.tokenizer.name,
        "world_context": recipe.world_context.model_dump(mode="json"),
        "outline": recipe.outline.model_dump(mode="json"),
        "scenes": recipe.scenes.model_dump(mode="json"),
        "summaries": recipe.summaries.model_dump(mode="json"),
        "attempts": recipe.attempts,
        "prompts": {k: p.digest for k, p in sorted(prompts.items())},
    }


def novel_ids(paths: Sequence[Path], samples: int) -> list[tuple[str, Path, int]]:
    """(novel_id, seed path, 1-based sample) for each novel; ids come from file stems, made unique."""
    out: list[tuple[str, Path, int]] = []
    used: set[str] = set()
    for p in paths:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", p.stem).strip("-.") or "seed"
        base, k = stem, 2
        while stem in used:
            stem, k = f"{base}-{k}", k + 1
        used.add(stem)
        for s in range(1, samples + 1):
            out.append((stem if samples == 1 else f"{stem}-{s:02d}", p, s))
    return out


@dataclasses.dataclass
class _Novel:
    state: NovelState
    dir: Path

    @property
    def seed_path(self) -> str:
        return self.state.seed_path


def _fail(novels: Sequence[_Novel], step: str, cause: str, cls: type[NovelcraftError] = GenerateError) -> NovelcraftError:
    others = f" (and {len(novels) - 1} more novel(s))" if len(novels) > 1 else ""
    return cls(
        f"{novels[0].state.novel_id}{others}: {cause}; finished steps are checkpointed, re-run with --resume",
        path=novels[0].seed_path,
        step=step,
    )


# --------------------------------------------------------------------------- the runner


class _Meter:
    """Passes batches to the engine and adds up tokens and seconds per request key (for the trace)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = getattr(engine, "name", type(engine).__name__)
        self.by_key: dict[str, list[float]] = {}

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        responses = self.engine.generate(requests)
        for r in responses:
            acc = self.by_key.setdefault(r.key, [0, 0, 0.0])
            acc[0] += r.prompt_tokens
            acc[1] += r.completion_tokens
            acc[2] += r.seconds
        return responses

    def close(self) -> None:  # the caller owns the engine
        pass


class _Runner:
    def __init__(self, recipe: GenerateRecipe, engine: Engine, counter: TokenCounter, run_dir: Path, progress: bool) -> None:
        self.recipe = recipe
        self.engine = engine
        self.counter = counter
        self.run_dir = run_dir
        self.progress = progress
        self.prompts = {n: load_prompt(n, recipe.prompts_dir) for n in PROMPTS}
        self.stats = {k: CallStats() for k in ("world_context", "outline", "scenes", "summaries")}
        self.debug = DebugLog(run_dir / "llm_debug.jsonl" if recipe.llm.debug_log else None)
        self.steps: list[dict[str, Any]] = []
        self.meter = _Meter(engine)

    def tasks(self, stage: str, tasks: list[Task]) -> list[Outcome]:
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

    def save(self, novels: Sequence[_Novel]) -> None:
        for n in novels:
            save_state(n.state, n.dir)

    # -- world context ------------------------------------------------------------------------------

    def world_contexts(self, novels: Sequence[_Novel]) -> None:
        cfg = self.recipe.world_context
        need = [n for n in novels if n.state.world_context_text is None]
        for n in need:
            if n.state.seed.world_context is not None:
                n.state.world_context = n.state.seed.world_context
                n.state.world_context_text = n.state.world_context.render()
                tokens = self.counter.count(n.state.world_context_text)
                if tokens > cfg.budget_tokens:
                    raise GenerateError(
                        f"world_context: the rendered world context is {tokens} tokens; the budget is {cfg.budget_tokens}",
                        path=n.seed_path,
                        step="seed",
                    )
        need = [n for n in need if n.state.world_context_text is None]
        if not need:
            self.save(novels)
            return
        # Samples of one seed share one world context: one task per seed.
        by_seed: dict[str, list[_Novel]] = {}
        for n in need:
            by_seed.setdefault(n.state.seed.digest(), []).append(n)
        groups = list(by_seed.values())
        tasks = [
            world_context_from_premise_task(
                f"{g[0].state.novel_id}/world_context", g[0].state.seed, self.prompts["seed_world_context"], self.counter,
                budget_tokens=cfg.budget_tokens, max_tokens=cfg.max_tokens, compress_attempts=cfg.compress_attempts,
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
                n.state.world_context = o.value  # type: ignore[assignment]
                n.state.world_context_text = o.value.render()  # type: ignore[attr-defined]
                n.state.world_context_flagged = o.flagged
        self.save(novels)

    # -- outline ------------------------------------------------------------------------------------

    def outlines(self, novels: Sequence[_Novel], override: Outline | None) -> None:
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
                f"{n.state.novel_id}/outline/acts", n.state.seed, n.state.world_context_text or "", self.prompts["outline_acts"],
                scenes_per_act=plans[n.state.novel_id][0], scenes_per_chapter=cfg.scenes_per_chapter,
                max_tokens=cfg.acts_max_tokens, compress_attempts=cfg.compress_attempts,
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
        acts: dict[str, ActPlan] = {n.state.novel_id: o.value for n, o in zip(need, outcomes)}  # type: ignore[misc]
        jobs: list[tuple[_Novel, int]] = []
        scene_tasks: list[Task] = []
        for n in need:
            sizes, total = plans[n.state.novel_id]
            first = 1
            for a, size in enumerate(sizes, start=1):
                scene_tasks.append(
                    act_scenes_task(
                        f"{n.state.novel_id}/outline/act{a}", n.state.seed, n.state.world_context_text or "",
                        acts[n.state.novel_id], a, first, size, total, self.prompts["outline_scenes"],
                        scenes_per_chapter=cfg.scenes_per_chapter, tokens_per_scene=cfg.scene_goal_tokens,
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
                raise _fail([n], "outline", f"act {a}: no valid scene goals within limits after {o.attempts} answers: {o.error}")
            per_novel.setdefault(n.state.novel_id, []).append(list(o.value.scenes))  # type: ignore[attr-defined]
        sc = self.recipe.scenes
        for n in need:
            total = plans[n.state.novel_id][1]
            n.state.outline = assemble_outline(
                n.state.seed, acts[n.state.novel_id], per_novel[n.state.novel_id],
                scenes_per_chapter=cfg.scenes_per_chapter,
                target_words=scene_target_words(n.state.seed, total, sc.target_words_min, sc.target_words_max),
            )
            write_outline(n.state.outline, n.dir)
        self.save(novels)

    # -- scenes -------------------------------------------------------------------------------------

    def scenes(self, novels: Sequence[_Novel], position: int) -> None:
        """Scene ``position`` of every novel that needs it: one batch, then batches of retries."""
        cfg = self.recipe.scenes
        retry = self.recipe.llm.retry
        stats = self.stats["scenes"]
        # Novels sharing persona and world context go next to each other (prefix caching).
        jobs = sorted(novels, key=lambda n: (n.state.system_prompt, n.state.world_context_text or ""))
        notes: dict[str, list[str]] = {n.state.novel_id: [] for n in jobs}
        attempts = {n.state.novel_id: 0 for n in jobs}
        transport = {n.state.novel_id: 0 for n in jobs}
        best: dict[str, tuple[SceneCheck, LLMResponse, list[str]]] = {}
        done: dict[str, SceneRecord] = {}
        backoff = retry.backoff_s
        t0 = time.perf_counter()
        while True:
            pending = [n for n in jobs if n.state.novel_id not in done]
            if not pending:
                break
            requests = []
            for n in pending:
                st = n.state
                assert st.outline is not None and st.world_context_text is not None
                plan = st.outline.scenes[position - 1]
                messages = scene_prompt(
                    st.system_prompt, st.world_context_text, st.summary_before(position, self.recipe.opening_summary),
                    position, st.total, plan.instruction.render(), note="\n\n".join(notes[st.novel_id]) or None,
                )
                requests.append(LLMRequest(key=f"{st.novel_id}/scene{position}", messages=tuple(messages), max_tokens=cfg.max_tokens))
            try:
                responses = self.engine.generate(requests)
            except NovelcraftError as exc:
                raise _fail(pending, f"scene {position}", exc.cause) from None
            stats.rounds += 1
            trouble = False
            for n, req, resp in zip(pending, requests, responses):
                nid = n.state.novel_id
                self.debug.write(req, resp)
                stats.calls += 1
                stats.prompt_tokens += resp.prompt_tokens
                stats.completion_tokens += resp.completion_tokens
                if resp.error is not None:
                    stats.transport_errors += 1
                    transport[nid] += 1
                    trouble = True
                    if transport[nid] >= retry.attempts:
                        raise _fail([n], f"scene {position}", f"no answer after {transport[nid]} tries: {resp.error}")
                    continue
                attempts[nid] += 1
                check = check_scene(resp.text, resp.finish_reason, min_words=cfg.min_words,
                                    max_repetition=cfg.max_repetition, trim_cut_off=cfg.trim_cut_off)
                if check.ok:
                    done[nid] = self._record(position, check, resp, attempts[nid], notes[nid])
                    continue
                prev = best.get(nid)
                if prev is None or better(prev[0], check) is check:
                    best[nid] = (check, resp, list(notes[nid]))
                if attempts[nid] < cfg.attempts:
                    stats.retries += 1
                    plan = n.state.outline.scenes[position - 1]  # type: ignore[union-attr]
                    notes[nid] = [retry_note(check, min_words=cfg.min_words, target_words=plan.target_words)]
                    continue
                kept, kept_resp, kept_notes = best[nid]
                reason = f"{kept.problem}: {kept.detail} (after {attempts[nid]} attempts)"
                if self.recipe.on_failure == "error" or not kept.text:
                    raise _fail([n], f"scene {position}", f"no acceptable scene: {reason}")
                stats.flagged += 1
                log.warning("%s scene %d kept and flagged: %s", nid, position, reason)
                done[nid] = self._record(position, kept, kept_resp, attempts[nid], kept_notes, flag=reason)
            if trouble and any(n.state.novel_id not in done for n in jobs):
                log.warning("LLM transport errors in scene %d; retrying in %.1f s", position, backoff)
                time.sleep(backoff)
                backoff = min(retry.max_backoff_s, backoff * 2)
        for n in jobs:
            n.state.scenes.append(done[n.state.novel_id])
        stats.seconds += time.perf_counter() - t0
        self.save(jobs)
        self._step(position, "scenes", len(jobs), time.perf_counter() - t0)

    @staticmethod
    def _record(position: int, check: SceneCheck, resp: LLMResponse, attempts: int, notes: list[str], flag: str | None = None) -> SceneRecord:
        return SceneRecord(
            index=position, text=check.text, words=check.words, attempts=attempts, notes=list(notes),
            flagged=flag is not None, flag_reason=flag, trimmed=check.trimmed,
            prompt_tokens=resp.prompt_tokens, completion_tokens=resp.completion_tokens, seconds=resp.seconds,
        )

    # -- summaries ----------------------------------------------------------------------------------

    def summaries(self, novels: Sequence[_Novel], position: int) -> None:
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
                    raise _fail([n], f"summary after scene {position}", f"no valid summary after {o.attempts} answers: {o.error}")
                sc.summary_flagged, sc.summary_flag_reason = True, f"no valid summary (previous one carried): {o.error}"
            else:
                sc.summary = o.value  # type: ignore[assignment]
                sc.summary_flagged, sc.summary_flag_reason = o.flagged, o.flag_reason
            sc.summary_done = True
            prompt_tokens, completion_tokens, secs = self.meter.by_key.get(o.key, [0, 0, 0.0])
            sc.summary_prompt_tokens, sc.summary_completion_tokens = int(prompt_tokens), int(completion_tokens)
            sc.summary_seconds = round(secs, 3)
        self.save(novels)
        self._step(position, "summaries", len(novels), seconds)

    def _step(self, position: int, kind: str, novels: int, seconds: float) -> None:
        self.steps.append({"scene": position, "kind": kind, "novels": novels, "seconds": round(seconds, 3)})


# --------------------------------------------------------------------------- public API


def generate_novels(
    seeds: Sequence[str | Path] | None,
    recipe: GenerateRecipe,
    engine: Engine | None = None,
    *,
    counter: TokenCounter | None = None,
    resume: bool = False,
    outline: str | Path | Outline | None = None,
    branch_from: tuple[str | Path, int] | None = None,
    progress: bool = False,
) -> GenerateResult:
    """Generate the novels of ``seeds`` (default: ``recipe.seeds``) into ``recipe.output_dir/recipe.name``.

    ``engine`` defaults to ``make_engine(recipe.llm)`` (closed at the end); ``counter`` to the recipe's
    tokenizer. ``resume`` continues the checkpoints of an interrupted run (same settings only);
    ``outline`` (a file or an :class:`Outline`) replaces the generated outline of every novel;
    ``branch_from=(RUN_DIR, K)`` copies the novels of another run up to scene ``K`` (with their
    summaries, outline and world context) and continues them with this recipe's settings.
    Files per novel: ``novels/ID/{state.json, outline.json, outline.yaml, novel.md, novel.epub,
    novel.json, trace.json}``; per run ``recipe.resolved.yaml`` and ``stats.json``.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    run_dir = recipe.run_dir
    system_default = recipe.system_prompt.resolve()
    override = read_outline(outline) if isinstance(outline, (str, Path)) else outline
    existing = find_states(run_dir)
    if existing and not resume:
        raise GenerateError(
            f"the run already holds {len(existing)} novel checkpoint(s); pass --resume to continue it, "
            "or choose another name (nothing is overwritten)",
            path=run_dir,
            step="generate",
        )
    if branch_from is not None and override is not None:
        raise GenerateError("--outline cannot be combined with --branch-from (the branch keeps its source's outline)", step="generate")
    prompts_for_key = {n: load_prompt(n, recipe.prompts_dir) for n in PROMPTS}

    def settings_for(seed: StorySeed, sample: int, system_prompt: str) -> dict[str, Any]:
        return run_settings(recipe, seed, sample, system_prompt, prompts_for_key)

    novels: list[_Novel] = []
    if branch_from is not None and not existing:
        source, k = Path(branch_from[0]), int(branch_from[1])
        if source.resolve() == run_dir.resolve():
            raise GenerateError("a branch needs a new run directory (set name=...)", path=source, step="branch")
        sources = find_states(source)
        if not sources:
            raise GenerateError("no novel checkpoints to branch from", path=source, step="branch")
        for path in sources:
            old = load_state(path)
            if k < 0 or k > len(old.scenes):
                raise GenerateError(f"{old.novel_id} has {len(old.scenes)} scenes; cannot branch from scene {k}", path=path, step="branch")
            settings = settings_for(old.seed, old.sample, old.system_prompt)
            state = old.model_copy(
                update={
                    "scenes": [s.model_copy(deep=True) for s in old.scenes[:k]],
                    "settings": settings,
                    "key": settings_key(settings),
                    "branched_from": {"run": str(source), "scene": k, "key": old.key},
                },
                deep=True,
            )
            novels.append(_Novel(state, run_dir / "novels" / old.novel_id))
    elif existing:
        by_id = {p.parent.name: load_state(p) for p in existing}
        for state in by_id.values():
            settings = settings_for(state.seed, state.sample, state.system_prompt)
            if state.key != settings_key(settings):
                diff = ", ".join(settings_diff(state.settings, settings)) or "settings"
                raise GenerateError(
                    f"{state.novel_id} was generated with other settings ({diff} differ); resume with the same recipe, "
                    "or continue it in a new run with --branch-from",
                    path=run_dir / "novels" / state.novel_id / "state.json",
                    step="resume",
                )
            if override is not None and state.outline is not None and state.outline != override:
                raise GenerateError("the checkpoint has another outline than --outline", path=run_dir / "novels" / state.novel_id, step="resume")
            novels.append(_Novel(state, run_dir / "novels" / state.novel_id))
        if branch_from is None:
            paths = resolve_seed_paths(seeds if seeds is not None else recipe.seeds)
            for nid, path, sample in novel_ids(paths, recipe.samples_per_seed):
                if nid not in by_id:
                    novels.append(_new_novel(nid, path, sample, recipe, system_default, settings_for, run_dir))
    else:
        paths = resolve_seed_paths(seeds if seeds is not None else recipe.seeds)
        ids = novel_ids(paths, recipe.samples_per_seed)
        if override is not None and len(paths) > 1:
            raise GenerateError("an --outline file fits one seed; this run has several", step="outline")
        for nid, path, sample in ids:
            novels.append(_new_novel(nid, path, sample, recipe, system_default, settings_for, run_dir))

    run_dir.mkdir(parents=True, exist_ok=True)
    write_resolved_recipe(recipe, run_dir)
    if counter is None:
        from ..tokens import load_token_counter

        counter = load_token_counter(recipe.tokenizer)
    own_engine = engine is None
    if engine is None:
        from ..llm.engine import make_engine

        engine = make_engine(recipe.llm)
    runner = _Runner(recipe, engine, counter, run_dir, progress)
    try:
        runner.save(novels)
        runner.world_contexts(novels)
        runner.outlines(novels, override)
        steps = max(n.state.total for n in novels)
        bar = tqdm(total=steps, desc="scenes", unit="step", disable=not progress)
        for position in range(1, steps + 1):
            need_scene = [n for n in novels if len(n.state.scenes) == position - 1 and position <= n.state.total]
            if need_scene:
                runner.scenes(need_scene, position)
            need_summary = [n for n in novels if len(n.state.scenes) >= position and not n.state.scenes[position - 1].summary_done]
            if need_summary:
                runner.summaries(need_summary, position)
            bar.update(1)
        bar.close()
        files: dict[str, list[str]] = {}
        for n in novels:
            written = write_novel_files(
                n.state, n.dir, opening_summary=recipe.opening_summary,
                markdown=recipe.output.markdown, epub=recipe.output.epub,
            )
            files[n.state.novel_id] = [str(p.relative_to(run_dir)) for p in written]
        hit_rate = getattr(engine, "prefix_cache_hit_rate", None)
        stats = {
            "novelcraft_version": __version__,
            "name": recipe.name,
            "engine": recipe.llm.identity(),
            "novels": [_novel_stats(n.state) for n in novels],
            "calls": {k: v.as_dict() for k, v in runner.stats.items()},
            "steps": runner.steps,
            "prefix_cache_hit_rate": hit_rate() if callable(hit_rate) else None,
            "files": files,
            "seconds": round(time.perf_counter() - t_start, 3),
        }
        atomic_write_json(run_dir / "stats.json", stats)
    finally:
        if own_engine:
            engine.close()
    return GenerateResult(run_dir=run_dir, novels=[n.state for n in novels], stats=stats)


def _new_novel(nid: str, path: Path, sample: int, recipe: GenerateRecipe, system_default: str, settings_for: Any, run_dir: Path) -> _Novel:
    seed = load_seed(path)
    system_prompt = seed.persona.strip() if seed.persona else system_default
    settings = settings_for(seed, sample, system_prompt)
    state = NovelState(
        novel_id=nid, seed_path=str(path), sample=sample, seed=seed, key=settings_key(settings),
        settings=settings, system_prompt=system_prompt,
    )
    return _Novel(state, run_dir / "novels" / nid)


def _novel_stats(state: NovelState) -> dict[str, Any]:
    return {
        "novel_id": state.novel_id,
        "seed": state.seed_path,
        "sample": state.sample,
        "scenes": len(state.scenes),
        "planned_scenes": state.total,
        "words": sum(s.words for s in state.scenes),
        "flagged_scenes": [s.index for s in state.scenes if s.flagged],
        "flagged_summaries": [s.index for s in state.scenes if s.summary_flagged],
        "trimmed_scenes": [s.index for s in state.scenes if s.trimmed],
        "retried_scenes": [s.index for s in state.scenes if s.attempts > 1],
        "world_context_flagged": state.world_context_flagged,
        "scene_completion_tokens": sum(s.completion_tokens for s in state.scenes),
        "branched_from": state.branched_from,
        "finished": state.finished,
    }


def make_outline(
    seed: StorySeed,
    recipe: GenerateRecipe,
    engine: Engine,
    *,
    counter: TokenCounter | None = None,
    world_context: str | None = None,
    seed_path: str | Path = "<seed>",
) -> Outline:
    """The outline of one seed (acts, then scene goals), in memory; writes nothing.

    ``world_context`` (rendered) defaults to the seed's own, else one is written from the premise.
    """
    if counter is None:
        from ..tokens import load_token_counter

        counter = load_token_counter(recipe.tokenizer)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="novelcraft-outline-") as tmp:
        state = NovelState(
            novel_id="outline", seed_path=str(seed_path), seed=seed, key="", settings={},
            system_prompt=recipe.system_prompt.resolve(), world_context_text=world_context,
        )
        novel = _Novel(state, Path(tmp) / "outline")
        runner = _Runner(recipe, engine, counter, Path(tmp), progress=False)
        runner.world_contexts([novel])
        runner.outlines([novel], None)
    assert state.outline is not None
    return state.outline


__all__ = ["GenerateError", "GenerateResult", "generate_novels", "make_outline", "novel_ids", "run_settings"]

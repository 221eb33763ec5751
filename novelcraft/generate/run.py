"""``generate_novels``: story seeds -> world context -> outline -> scene loop with running summaries.

Many novels advance in lockstep (:mod:`novelcraft.generate.steps`), so each engine call is a batch across
novels: the world contexts of all seeds, then every act plan, then every act's scene goals, then for each
step *n* scene *n* of every novel (its retries in further batches), then the running summaries after those
scenes. Checkpoints and stores make a crashed run continue with ``resume=True`` and repeat no finished call.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import NovelcraftError
from ..executors.base import make_executor
from ..io import sha256_text
from ..llm.factory import make_engine
from ..llm.types import Engine
from ..prompts import PromptTemplate, load_prompt
from ..recipes import write_resolved_recipe
from ..runs import Manifest, settings_diff
from ..stats import ItemStats, RunStats, stop_reason
from ..tokens import TokenCounter
from .outline import Outline, read_outline
from .parallel import advance_novels, advance_on_executor
from .recipe import GenerateRecipe
from .seed import StorySeed, load_seed, resolve_seed_paths
from .state import NovelState, adapter_digest, find_states, load_state, settings_key, state_path
from .steps import PROMPTS, GenerateError, NovelHandle, Stepper

log = logging.getLogger(__name__)


@dataclasses.dataclass
class GenerateResult:
    """What a run produced: the novels' final states, where they are, and the run's stats record."""

    run_dir: Path
    novels: list[NovelState]
    stats: RunStats

    def summary(self) -> str:
        """The lines ``novelcraft generate`` prints (the stats summary)."""
        return self.stats.summary()


# --------------------------------------------------------------------------- settings and novels


def run_settings(
    recipe: GenerateRecipe, seed: StorySeed, sample: int, system_prompt: str, prompts: dict[str, PromptTemplate]
) -> dict[str, Any]:
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
            "chat_template": sha256_text(Path(llm.chat_template).read_text(encoding="utf-8"))
            if llm.chat_template
            else None,
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
        raise GenerateError(
            "--outline cannot be combined with --branch-from (the branch keeps its source's outline)", step="generate"
        )
    prompts_for_key = {n: load_prompt(n, recipe.prompts_dir) for n in PROMPTS}

    def settings_for(seed: StorySeed, sample: int, system_prompt: str) -> dict[str, Any]:
        return run_settings(recipe, seed, sample, system_prompt, prompts_for_key)

    novels: list[NovelHandle] = []
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
                raise GenerateError(
                    f"{old.novel_id} has {len(old.scenes)} scenes; cannot branch from scene {k}",
                    path=path,
                    step="branch",
                )
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
            novels.append(NovelHandle(state, run_dir / "novels" / old.novel_id))
    elif existing:
        by_id = {p.parent.name: load_state(p) for p in existing}
        manifest = Manifest(run_dir / "manifest.json")
        for state in by_id.values():
            settings = settings_for(state.seed, state.sample, state.system_prompt)
            entry = manifest.get(f"novels/{state.novel_id}")
            stored_key, stored = (entry.fingerprint, entry.settings or {}) if entry else (state.key, state.settings)
            if stored_key != settings_key(settings):
                diff = ", ".join(settings_diff(stored, settings)) or "settings"
                raise GenerateError(
                    f"{state.novel_id} was generated with other settings ({diff} differ); resume with the same recipe, "
                    "or continue it in a new run with --branch-from",
                    path=run_dir / "novels" / state.novel_id / "state.json",
                    step="resume",
                )
            if override is not None and state.outline is not None and state.outline != override:
                raise GenerateError(
                    "the checkpoint has another outline than --outline",
                    path=run_dir / "novels" / state.novel_id,
                    step="resume",
                )
            novels.append(NovelHandle(state, run_dir / "novels" / state.novel_id))
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
    executor = None if recipe.executor.inline else make_executor(recipe.executor)
    try:
        if executor is None:
            if engine is None:
                engine = make_engine(recipe.llm)
            done = advance_novels(novels, recipe, engine, counter, run_dir, override, progress=progress)
        else:
            done = advance_on_executor(novels, recipe, engine, counter, run_dir, override, executor, progress=progress)
        stats = _run_stats(
            recipe,
            run_dir,
            counter,
            t_start,
            executor=executor.stats() if executor is not None else None,
            items=[_novel_item(n.state, n.dir) for n in novels],
            stages=done.stages,
            details={
                "novels": [_novel_stats(n.state) for n in novels],
                "steps": done.steps,
                "prefix_cache_hit_rate": done.prefix_cache_hit_rate,
                "files": {k: [str(p.relative_to(run_dir)) for p in v] for k, v in done.files.items()},
            },
        )
        stats.write(run_dir)
    except BaseException as exc:
        # stats.json must not go on describing an earlier, finished run: what the checkpoints hold now, and why
        # the run stopped (the scenes written so far stay for the resume)
        stopped = _run_stats(
            recipe,
            run_dir,
            counter,
            t_start,
            items=[_novel_item(_saved_state(n), n.dir) for n in novels],
            error=stop_reason(exc),
        )
        try:
            stopped.write(run_dir)
        except OSError as write_error:  # the error that stopped the run is the one to raise
            log.warning("%s: cannot write stats.json (%s)", run_dir, write_error)
        raise
    finally:
        if executor is not None:
            executor.close()
        if own_engine and engine is not None:
            engine.close()
    return GenerateResult(run_dir=run_dir, novels=[n.state for n in novels], stats=stats)


def _new_novel(
    nid: str, path: Path, sample: int, recipe: GenerateRecipe, system_default: str, settings_for: Any, run_dir: Path
) -> NovelHandle:
    seed = load_seed(path)
    system_prompt = seed.persona.strip() if seed.persona else system_default
    settings = settings_for(seed, sample, system_prompt)
    state = NovelState(
        novel_id=nid,
        seed_path=str(path),
        sample=sample,
        seed=seed,
        key=settings_key(settings),
        settings=settings,
        system_prompt=system_prompt,
    )
    return NovelHandle(state, run_dir / "novels" / nid)


def _run_stats(recipe: GenerateRecipe, run_dir: Path, counter: TokenCounter, t_start: float, **fields: Any) -> RunStats:
    return RunStats(
        command="generate",
        name=recipe.name,
        run_dir=str(run_dir),
        engine=recipe.llm.identity(),
        tokenizer=counter.name,
        seconds=round(time.perf_counter() - t_start, 3),
        **fields,
    )


def _saved_state(novel: NovelHandle) -> NovelState:
    """A novel's last checkpoint (workers of an executor advance their own copies), else its state here."""
    path = state_path(novel.dir)
    try:
        return load_state(path) if path.is_file() else novel.state
    except NovelcraftError:  # a checkpoint that cannot be read is reported by the resume, not here
        return novel.state


def _novel_item(state: NovelState, novel_dir: Path) -> ItemStats:
    flags = {
        "scenes": sum(s.flagged for s in state.scenes),
        "summaries": sum(s.summary_flagged for s in state.scenes),
        "world_context": int(state.world_context_flagged),
    }
    flags = {k: v for k, v in flags.items() if v}
    return ItemStats(
        id=state.novel_id,
        source=state.seed_path,
        counts={
            "scenes": len(state.scenes),
            "planned_scenes": state.total,
            "words": sum(s.words for s in state.scenes),
        },
        flagged=sum(flags.values()),
        flags=flags,
        note=f"-> {novel_dir}",
    )


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
            novel_id="outline",
            seed_path=str(seed_path),
            seed=seed,
            key="",
            settings={},
            system_prompt=recipe.system_prompt.resolve(),
            world_context_text=world_context,
        )
        novel = NovelHandle(state, Path(tmp) / "outline")
        runner = Stepper(recipe, engine, counter, Path(tmp), progress=False)
        runner.world_contexts([novel])
        runner.outlines([novel], None)
    assert state.outline is not None
    return state.outline


__all__ = ["GenerateError", "GenerateResult", "generate_novels", "make_outline", "novel_ids", "run_settings"]

"""``run_continuation``: a continuation recipe over a run directory (chunks, teacher calls with resume, records).

The run directory ``OUTPUT_DIR/NAME`` holds::

    train.jsonl / validation.jsonl             {"messages": [...]} per line, CRA or chat format
    train.meta.jsonl / validation.meta.jsonl   one ContinuationMeta per record, same order
    hf_dataset/                                with export format hf
    README.md                                  data card
    llm/guidance.jsonl, llm/reasoning.jsonl    every finished teacher answer (the resume store)
    stats.json, manifest.json, recipe.resolved.yaml

Teacher answers are stored as each batch finishes, so a killed run loses at most one batch and the next run
answers the finished chunks from the store without calling an engine; the data files are written only at
the end, atomically, and the manifest after them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..bookfiles import load_book, resolve_book_files
from ..chat_format import load_chat_template
from ..errors import NovelcraftError
from ..io import sha256_file
from ..llm.factory import LazyEngine
from ..llm.tasks import DebugLog, Outcome, Task, run_tasks
from ..prompts import load_prompt
from ..recipes import dump_recipe, write_resolved_recipe
from ..runs import Manifest, ResultStore, fingerprint
from ..stats import ItemStats, RunStats, StageStats, read_stats
from .chunk import Chunk, chunk_book, select_chunks
from .files import expected_files, write_dataset
from .recipe import ContinuationRecipe
from .records import Built, ContinuationStats, DroppedChunk, Reasoned, build_records
from .teacher import GUIDANCE_PROMPT, REASONING_PROMPT, guidance_tasks, reasoning_tasks

if TYPE_CHECKING:  # pragma: no cover
    from ..llm.types import Engine
    from ..tokens import TokenCounter

log = logging.getLogger(__name__)

#: the manifest entry of a finished data set.
ENTRY = "dataset"


@dataclass
class ContinuationResult:
    """A finished run: its stats record, the data-set statistics and whether it was skipped."""

    stats: RunStats
    dataset: ContinuationStats
    built: Built | None = None
    skipped: bool = False
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The lines ``novelcraft continuation`` prints."""
        return self.stats.summary()


def _guided(chunk: Chunk, share: float, seed: int) -> bool:
    digest = hashlib.sha256(f"guidance:{seed}:{chunk.chunk_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _batched(
    engine: Engine,
    tasks: Sequence[Task],
    *,
    store: ResultStore,
    stats: StageStats,
    attempts: int,
    salt: str,
    batch: int,
    retry: tuple[int, float, float],
    debug: DebugLog,
    desc: str,
    progress: bool,
) -> list[Outcome]:
    from tqdm import tqdm

    out: list[Outcome] = []
    with tqdm(total=len(tasks), desc=desc, unit="item", disable=not progress) as bar:
        for lo in range(0, len(tasks), batch):
            part = tasks[lo : lo + batch]
            out += run_tasks(
                engine,
                part,
                attempts=attempts,
                transport_attempts=retry[0],
                backoff_s=retry[1],
                max_backoff_s=retry[2],
                store=store,
                salt=salt,
                stats=stats,
                debug=debug,
            )
            bar.update(len(part))
    return out


def run_continuation(
    recipe: ContinuationRecipe,
    counter: TokenCounter | None = None,
    *,
    engine: Engine | None = None,
    guidance_engine: Engine | None = None,
    force: bool = False,
    progress: bool = False,
) -> ContinuationResult:
    """Build the reasoning-continuation data set of ``recipe`` in ``recipe.run_dir``.

    ``engine`` / ``guidance_engine`` default to the recipe's teacher and guidance engines (built on first use,
    so a run whose answers are all stored loads no model); guidance without an engine of its own in the recipe
    comes from ``engine``. Skips the work when books, recipe, prompts and
    novelcraft version are unchanged and the files are in place (``force`` redoes it; stored teacher answers
    are still reused). Raises :class:`~novelcraft.errors.NovelcraftError` when a chunk gets no valid
    reasoning and ``teacher.on_failure`` is ``error``.
    """
    t0 = time.perf_counter()
    run_dir = recipe.run_dir
    paths = resolve_book_files(recipe.books, recipe.book_files)
    if counter is None:
        from ..tokens import load_token_counter

        counter = load_token_counter(recipe.tokenizer)
    template = load_chat_template(recipe.records.chat_template, recipe.tokenizer.name)
    prompts = [load_prompt(n, recipe.teacher.prompts_dir) for n in (REASONING_PROMPT, GUIDANCE_PROMPT)]
    fp = fingerprint(
        dump_recipe(recipe),
        counter.name,
        template.jinja,
        [p.digest for p in prompts],
        [(str(p), sha256_file(p)) for p in paths],
    )
    manifest = Manifest(run_dir / "manifest.json")
    if not force and "jsonl" in recipe.export.formats and manifest.done(ENTRY, fp):
        stored = read_stats(run_dir)
        stored.notes = [*stored.notes, "inputs and recipe unchanged: skipped (--force rebuilds)"]
        return ContinuationResult(
            stats=stored,
            dataset=ContinuationStats.model_validate(stored.details["dataset"]),
            skipped=True,
            files=list(stored.details.get("files", [])),
        )

    books = [load_book(p) for p in paths]
    seen: dict[str, Path] = {}
    for p, b in zip(paths, books):
        if b.meta.book_id in seen:
            raise NovelcraftError(f"two books have book_id '{b.meta.book_id}' ({seen[b.meta.book_id]})", path=p)
        seen[b.meta.book_id] = p
    all_chunks = [c for b in books for c in chunk_book(b, recipe.chunking, counter, recipe.max_chapters)]
    if not all_chunks:
        raise NovelcraftError("no chunk: every chapter is shorter than a chunk", path=paths[0], step="chunking")
    chosen = select_chunks(all_chunks, recipe.select)
    limit = recipe.records.max_tokens
    dropped = [
        DroppedChunk(
            chunk_id=c.chunk_id,
            reason="over_budget",
            detail=f"context {c.context_tokens} + continuation {c.target_tokens} tokens exceed "
            f"records.max_tokens {limit}",
        )
        for c in chosen
        if c.context_tokens + c.target_tokens > limit
    ]
    gone = {d.chunk_id for d in dropped}
    chunks = [c for c in chosen if c.chunk_id not in gone]

    llm_dir = run_dir / "llm"
    debug = DebugLog(run_dir / "llm_debug.jsonl" if recipe.teacher.llm.debug_log else None)
    salt = "|".join(p.digest for p in prompts)
    stages = {"guidance": StageStats(), "reasoning": StageStats()}
    guidance: dict[str, str] = {}
    g_engine_name = None
    if recipe.guidance.enabled:
        g_cfg = recipe.guidance_llm
        # without an engine of its own, guidance comes from the teacher's (the one passed in, or the recipe's)
        shared = engine if recipe.guidance.llm is None else None
        g_engine = guidance_engine or shared or LazyEngine(g_cfg)
        g_engine_name = str(getattr(g_engine, "name", g_cfg.identity()))
        wanted = [c for c in chunks if _guided(c, recipe.guidance.share, recipe.select.seed)]
        start = time.perf_counter()
        outs = _batched(
            g_engine,
            guidance_tasks(wanted, prompts[1], recipe.guidance, recipe.chunking.language),
            store=ResultStore(llm_dir / "guidance.jsonl"),
            stats=stages["guidance"],
            attempts=recipe.guidance.attempts,
            salt=salt,
            batch=recipe.teacher.batch_size,
            retry=(g_cfg.retry.attempts, g_cfg.retry.backoff_s, g_cfg.retry.max_backoff_s),
            debug=debug,
            desc="guidance",
            progress=progress,
        )
        stages["guidance"].wall_seconds = time.perf_counter() - start
        for c, o in zip(wanted, outs):
            if o.value is not None:
                guidance[c.chunk_id] = o.value.guidance.strip()
            else:
                dropped.append(DroppedChunk(chunk_id=c.chunk_id, reason="no_guidance", detail=o.error or "no answer"))
        wanted_ids = {c.chunk_id for c in wanted}
        chunks = [c for c in chunks if c.chunk_id not in wanted_ids or c.chunk_id in guidance]

    t_cfg = recipe.teacher.llm
    t_engine = engine or LazyEngine(t_cfg)
    t_name = str(getattr(t_engine, "name", t_cfg.identity()))
    start = time.perf_counter()
    outs = _batched(
        t_engine,
        reasoning_tasks(chunks, guidance, prompts[0], recipe.teacher),
        store=ResultStore(llm_dir / "reasoning.jsonl"),
        stats=stages["reasoning"],
        attempts=recipe.teacher.attempts,
        salt=salt,
        batch=recipe.teacher.batch_size,
        retry=(t_cfg.retry.attempts, t_cfg.retry.backoff_s, t_cfg.retry.max_backoff_s),
        debug=debug,
        desc="reasoning",
        progress=progress,
    )
    stages["reasoning"].wall_seconds = time.perf_counter() - start
    reasoned = []
    for c, o in zip(chunks, outs):
        if o.value is None:
            if recipe.teacher.on_failure == "error":
                raise NovelcraftError(
                    f"{c.chunk_id}: no valid reasoning after {o.attempts} answers: {o.error}", step="teacher"
                )
            dropped.append(DroppedChunk(chunk_id=c.chunk_id, reason="no_reasoning", detail=o.error or "no answer"))
            continue
        reasoned.append(Reasoned(c, o.value.reasoning.strip(), guidance.get(c.chunk_id), o.flagged))
    built = build_records(
        reasoned,
        recipe,
        counter,
        template,
        chunks=len(all_chunks),
        dropped=dropped,
        teacher=t_name,
        guidance_engine=g_engine_name,
    )
    if not built.train and not built.validation:
        raise NovelcraftError(f"no records: all {len(chosen)} chunks were dropped", step="records")
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest.forget(ENTRY)
    write_resolved_recipe(recipe, run_dir)
    write_dataset(built, recipe, run_dir)
    files = expected_files(recipe, built.stats)
    stats = _run_stats(recipe, built, paths, stages, t_name, counter.name, files, time.perf_counter() - t0)
    stats.write(run_dir)
    manifest.record(ENTRY, fp, [run_dir / f for f in files], stats.seconds)
    return ContinuationResult(stats=stats, dataset=built.stats, built=built, files=files)


def _run_stats(
    recipe: ContinuationRecipe,
    built: Built,
    paths: Sequence[Path],
    stages: dict[str, StageStats],
    engine: str,
    tokenizer: str,
    files: list[str],
    seconds: float,
) -> RunStats:
    s = built.stats
    items = [
        ItemStats(id=book, counts={"chunks": n["chunks"], "train": n["train"], "validation": n["validation"]})
        for book, n in s.books.items()
    ]
    by_reason: dict[str, int] = {}
    for d in s.dropped:
        by_reason[d.reason] = by_reason.get(d.reason, 0) + 1
    rec = s.tokens["record"]
    notes = [
        f"{s.records['train']} train + {s.records['validation']} validation records ({s.format} format) from "
        f"{s.chunks} chunks ({s.selected} selected, {s.guided} guided, {s.flagged} flagged)",
        f"tokens per record: min {rec.min}, median {rec.median:g}, max {rec.max} (budget {s.max_tokens})",
        f"split: {s.split.describe()}",
    ]
    if by_reason:
        notes.append("dropped: " + ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in sorted(by_reason.items())))
    return RunStats(
        command="continuation",
        name=recipe.name,
        run_dir=str(recipe.run_dir),
        seconds=round(seconds, 3),
        engine=engine,
        tokenizer=tokenizer,
        items=items,
        stages=stages,
        notes=notes,
        details={"inputs": [str(p) for p in paths], "dataset": s.model_dump(mode="json"), "files": files},
    )

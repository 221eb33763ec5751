"""The machinery the LLM stages share: a book's state through them, and the runner that sends a stage's tasks
(or several stages' tasks, in the same calls) to the engine with the recipe's retries, result stores,
statistics, progress and debug log."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import NovelcraftError
from ..llm.debug import DebugLog
from ..llm.tasks import Outcome, Task, run_tasks
from ..llm.types import Engine
from ..models import Book, Instruction, RunningSummary
from ..prompts import load_prompt
from ..runs import ResultStore, StoreGroup
from ..stats import StageStats
from .recipe import PrepRecipe

log = logging.getLogger(__name__)

STAGES = ("world_context", "segmentation", "summaries", "instructions")
#: writes one stage file: (file name, book folder, model); whatever it returns is ignored.
SaveFile = Callable[[str, Path, Any], object]
PROMPTS = (
    "world_context",
    "segmentation",
    "summary",
    "reference_summary",
    "instruction",
    "summary_digest",
    "summary_global",
)


class StageError(NovelcraftError):
    """An LLM stage could not produce a valid item (names book, stage and item)."""


@dataclasses.dataclass
class BookState:
    """One book moving through the LLM stages, and where its files go."""

    book: Book
    book_dir: Path
    flags: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    summaries: dict[int, RunningSummary] = dataclasses.field(default_factory=dict)
    instructions: dict[int, Instruction] = dataclasses.field(default_factory=dict)

    def flag(self, stage: str, item: str, reason: str) -> None:
        """Record an item kept over budget or replaced by a fallback."""
        self.flags.append({"stage": stage, "item": item, "reason": reason})


@dataclasses.dataclass
class _Ticker:
    """Refreshes a progress bar every few seconds while one long engine call runs: elapsed time moves."""

    def __init__(self, bar: Any, every: float = 5.0) -> None:
        self.bar, self.every = bar, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.bar.refresh()

    def __enter__(self) -> _Ticker:
        if not getattr(self.bar, "disable", False):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


class StageRunner:
    """Runs one stage's tasks through the engine with the recipe's retries, store, debug log and stats."""

    def __init__(
        self, engine: Engine, recipe: PrepRecipe, run_dir: Path, *, progress: bool, engine_identity: str
    ) -> None:
        self.engine = engine
        self.recipe = recipe
        self.llm_dir = run_dir / "llm"
        self.progress = progress
        self.identity = engine_identity
        self.stats: dict[str, StageStats] = {s: StageStats() for s in STAGES}
        debug_on = bool(recipe.llm and recipe.llm.debug_log)
        self.debug = DebugLog(run_dir / "llm_debug.jsonl" if debug_on else None)
        self.prompts = {n: load_prompt(n, recipe.stages.prompts_dir) for n in PROMPTS}

    def run(self, stage: str, tasks: list[Task], desc: str) -> list[Outcome]:
        """Run ``tasks`` of ``stage`` with its result store, progress bar, statistics and debug log."""
        return self.run_joint([(stage, tasks)], desc)[0]

    def run_joint(
        self, parts: list[tuple[str, list[Task]]], desc: str, order: list[Task] | None = None
    ) -> list[list[Outcome]]:
        """Run the tasks of several stages in the same engine calls (each stage keeps its store and
        statistics): a scene's summary and instruction share a prompt prefix, so the second is served from
        the prefix cache. ``order`` sends the tasks in that order (neighbours share the cache best).
        Returns each part's outcomes in order."""
        from tqdm.auto import tqdm

        tasks = order if order is not None else [t for _, ts in parts for t in ts]
        if not tasks:
            return [[] for _ in parts]
        stage_of = {t.key: stage for stage, ts in parts for t in ts}
        stores = {stage: ResultStore(self.llm_dir / f"{stage}.jsonl") for stage, _ in parts}
        store = StoreGroup(stores, lambda key: stage_of[key])
        bar = tqdm(total=len(tasks), desc=desc, unit="req", disable=not self.progress, leave=False)
        salt = "|".join(p.digest for p in self.prompts.values())
        t0 = time.perf_counter()
        produced = [0]

        def on_round(round_no: int, pending: int) -> None:
            if round_no > 1:
                bar.total += pending  # retries and compressions: more requests
            bar.set_postfix(round=round_no, refresh=False)
            bar.refresh()

        def on_chunk(requests: int, completion_tokens: int) -> None:
            produced[0] += completion_tokens
            rate = produced[0] / max(1e-6, time.perf_counter() - t0)
            bar.update(requests)
            bar.set_postfix_str(f"{rate:.0f} tok/s", refresh=True)

        try:
            retry = self.recipe.llm.retry if self.recipe.llm else None
            with _Ticker(bar):
                outcomes = run_tasks(
                    self.engine,
                    tasks,
                    attempts=self.recipe.stages.attempts,
                    transport_attempts=retry.attempts if retry else 3,
                    backoff_s=retry.backoff_s if retry else 1.0,
                    max_backoff_s=retry.max_backoff_s if retry else 30.0,
                    store=store,
                    salt=salt,
                    engine_identity=self.identity,
                    stats=lambda t: self.stats[stage_of[t.key]],
                    debug=self.debug,
                    chunk_size=self.recipe.stages.chunk_size,
                    on_round=on_round,
                    on_chunk=on_chunk,
                )
        except NovelcraftError as exc:
            names = "+".join(stage for stage, _ in parts)
            raise StageError(f"stage {names}: {exc.cause}", step=names) from None
        finally:
            bar.close()
        by_key = {o.key: o for o in outcomes}
        return [[by_key[t.key] for t in ts] for _, ts in parts]

    def accept(self, stage: str, state: BookState, outcome: Outcome) -> Any:
        """The outcome's value (flag noted), or None for an item that stayed invalid: that stops the run
        (``on_failure: error``) or is flagged, and the caller falls back."""
        if outcome.value is None:
            if self.recipe.stages.on_failure == "error":
                raise StageError(
                    f"stage {stage}: {outcome.key}: no valid answer after {outcome.attempts} attempts: {outcome.error}",
                    step=stage,
                )
            log.warning("%s: %s: falling back (%s)", stage, outcome.key, outcome.error)
            state.flag(stage, outcome.key, outcome.error or "invalid")
            return None
        if outcome.flagged:
            state.flag(stage, outcome.key, outcome.flag_reason or "flagged")
        return outcome.value

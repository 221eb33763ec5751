"""The machinery the LLM stages share: a book's state through them, and the runner that drives the books'
flows (:mod:`novelcraft.llm.scheduler`) through the engine with the recipe's retries, result stores,
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
from ..llm.attempts import Outcome, Task
from ..llm.debug import DebugLog
from ..llm.scheduler import Flow, TaskScheduler, run_flows
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
    """Runs the stages' tasks through the engine with the recipe's retries, stores, debug log and stats."""

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
        self.stage_of: dict[str, str] = {}

    def tag(self, stage: str, tasks: list[Task]) -> list[Task]:
        """Mark ``tasks`` as ``stage``'s (its result store and statistics); returns them."""
        for t in tasks:
            self.stage_of[t.key] = stage
        return tasks

    def run_flows(self, flows: list[Flow], desc: str) -> None:
        """Run ``flows`` (:func:`novelcraft.llm.scheduler.run_flows`) with each stage's result store,
        statistics and debug log, and one progress bar over every request: requests answered of those known
        so far (retries and the next steps of the chains join as they come), tokens/s and the ETA."""
        from tqdm.auto import tqdm

        stores = {stage: ResultStore(self.llm_dir / f"{stage}.jsonl") for stage in STAGES}
        store = StoreGroup(stores, lambda key: self.stage_of[key])
        bar = tqdm(total=0, desc=desc, unit="req", disable=not self.progress, leave=False)
        salt = "|".join(p.digest for p in self.prompts.values())
        t0 = time.perf_counter()
        produced = [0]

        def on_round(round_no: int, pending: int) -> None:
            bar.total = bar.n + pending
            bar.set_postfix(round=round_no, refresh=False)
            bar.refresh()

        def on_chunk(requests: int, completion_tokens: int) -> None:
            produced[0] += completion_tokens
            rate = produced[0] / max(1e-6, time.perf_counter() - t0)
            bar.update(requests)
            bar.set_postfix_str(f"{rate:.0f} tok/s", refresh=True)

        retry = self.recipe.llm.retry if self.recipe.llm else None
        scheduler = TaskScheduler(
            self.engine,
            attempts=self.recipe.stages.attempts,
            transport_attempts=retry.attempts if retry else 3,
            backoff_s=retry.backoff_s if retry else 1.0,
            max_backoff_s=retry.max_backoff_s if retry else 30.0,
            store=store,
            salt=salt,
            engine_identity=self.identity,
            stats=lambda t: self.stats[self.stage_of[t.key]],
            debug=self.debug,
            chunk_size=self.recipe.stages.chunk_size,
            on_round=on_round,
            on_chunk=on_chunk,
        )
        try:
            with _Ticker(bar):
                run_flows(scheduler, flows)
        except NovelcraftError as exc:
            if isinstance(exc, StageError):
                raise
            raise StageError(f"LLM stages: {exc.cause}", step="llm stages") from None
        finally:
            bar.close()

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

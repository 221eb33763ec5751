"""The one stats record: every command writes :class:`RunStats` to ``stats.json`` beside its outputs and prints
its :meth:`RunStats.summary`, so the terminal and the file always say the same thing.

* :class:`StageStats` — engine work of one stage; :class:`ItemStats` — one unit of work (a book, a data set,
  a novel); :class:`ExecutorStats` — how the units were spread over workers, merged from every worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from . import __version__
from .errors import NovelcraftError
from .io import atomic_write_json
from .strict import Record


class StageStats(Record):
    """Engine work of one stage (LLM stages; zero for deterministic ones)."""

    calls: int = 0
    rounds: int = Field(0, description="sends to the engine that held one of the stage's requests (in rounds: rounds)")
    retries: int = 0
    compressions: int = 0
    flagged: int = Field(0, description="items kept with a flag: over budget after compression, or a fallback")
    failed: int = Field(0, description="items with no valid answer (a fallback took their place, or the run stopped)")
    reused: int = Field(0, description="items answered from the resume store without an engine call")
    transport_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    seconds: float = Field(0.0, description="engine time while the stage had a request in flight")
    wall_seconds: float = Field(0.0, description="time of the whole stage")

    def add(self, other: StageStats) -> None:
        """Add ``other``'s counts to these."""
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def active(self) -> bool:
        """Whether the stage did or reused anything."""
        return bool(self.calls or self.reused or self.flagged or self.failed)


class ItemStats(Record):
    """One unit of work of a command: a book, a data set, a novel."""

    id: str
    source: str | None = None
    status: Literal["ok", "failed", "skipped"] = "ok"
    error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    flagged: int = 0
    flags: dict[str, int] = Field(default_factory=dict, description="flagged items by reason kind")
    stages_run: list[str] = Field(default_factory=list)
    stages_skipped: list[str] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)
    info: dict[str, str] = Field(default_factory=dict, description="decisions worth knowing (an encoding, warnings)")
    note: str | None = None
    worker: str | None = Field(None, description="HOST:PID of the worker that produced the item (other executors)")
    tries: int = Field(1, ge=1, description="above 1: the item was redone after its worker died or the run was killed")


class WorkerStats(Record):
    """What one worker of an executor did: units, seconds inside them, its peak memory."""

    units: int = 0
    seconds: float = 0.0
    peak_rss_mb: float | None = None


class ExecutorStats(Record):
    """How a run's units of work (books, novels) were spread over workers, and what was redone or lost."""

    type: str
    workers: int
    address: str | None = None
    units: int = Field(0, description="units sent to workers")
    skipped: int = Field(0, description="units an earlier run finished (completion marker): not sent")
    worker_deaths: int = Field(0, description="workers seen dying under a unit (local); Ray counts its own")
    redone: list[str] = Field(default_factory=list, description="units redone after their worker died")
    lost: list[str] = Field(default_factory=list, description="units given up after max_retries lost workers")
    per_worker: dict[str, WorkerStats] = Field(default_factory=dict, description="by HOST:PID")


class RunStats(Record):
    """The stats record of one command run: written to ``stats.json``, printed by :meth:`summary`."""

    command: str
    name: str
    run_dir: str
    novelcraft_version: str = __version__
    seconds: float = 0.0
    peak_rss_mb: float | None = Field(None, description="peak resident memory of the process so far")
    engine: str | None = None
    tokenizer: str | None = None
    executor: ExecutorStats | None = Field(None, description="where the units ran (an executor other than inline)")
    items: list[ItemStats] = Field(default_factory=list)
    stages: dict[str, StageStats] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list, description="further summary lines of the command")
    details: dict[str, Any] = Field(default_factory=dict, description="command-specific figures (data card, steps...)")
    error: str | None = Field(
        None, description="what stopped the run before it finished: its outputs are incomplete (none: it finished)"
    )

    @property
    def failed(self) -> list[ItemStats]:
        """The items that failed."""
        return [i for i in self.items if i.status == "failed"]

    @property
    def flagged(self) -> int:
        """Flagged items over all items."""
        return sum(i.flagged for i in self.items)

    def summary(self) -> str:
        """The lines a command prints: one for the run, one per item, one per active stage."""
        ok = [i for i in self.items if i.status != "failed"]
        head = f"{self.command} {self.run_dir}: {len(ok)}/{len(self.items)} ok in {self.seconds:.1f}s"
        extras = [
            x
            for x in (
                f"{self.flagged} flagged" if self.flagged else None,
                self._executor_line(),
                f"engine {self.engine}" if self.engine else None,
                f"tokenizer {self.tokenizer}" if self.tokenizer else None,
                f"peak RSS {self.peak_rss_mb:.0f} MB" if self.peak_rss_mb else None,
            )
            if x
        ]
        lines = [head + (f" ({'; '.join(extras)})" if extras else "")]
        for i in self.items:
            if i.status == "failed":
                lines.append(f"  FAILED {i.error}")
                continue
            counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in i.counts.items())
            tail = []
            if i.flagged:
                kinds = ", ".join(f"{k} {v}" for k, v in sorted(i.flags.items()))
                tail.append(f"{i.flagged} flagged" + (f" ({kinds})" if kinds else ""))
            if i.stages_skipped:
                tail.append(f"skipped {', '.join(i.stages_skipped)}")
            if i.tries > 1:
                tail.append(f"redone (try {i.tries}: an earlier try did not finish)")
            if i.note:
                tail.append(i.note)
            tail += [f"{k}: {v}" for k, v in i.info.items() if k != "encoding"]
            lines.append(f"  {i.id}: {counts}" + (f"; {'; '.join(tail)}" if tail else ""))
        lines.extend(f"  {n}" for n in self.notes)
        if self.error:
            lines.append(f"  STOPPED before the end: {self.error}")
        for name, st in self.stages.items():
            if st.active:
                lines.append(
                    f"  {name}: {st.calls} calls ({st.reused} reused), {st.retries} retries, {st.compressions} "
                    f"compressions, {st.flagged} flagged, {st.failed} failed, {st.prompt_tokens} prompt + "
                    f"{st.completion_tokens} completion tokens, {st.wall_seconds:.1f}s"
                )
        return "\n".join(lines)

    def _executor_line(self) -> str | None:
        ex = self.executor
        if ex is None:
            return None
        parts = [f"executor {ex.type} x{ex.workers}"]
        if ex.per_worker:
            parts.append(f"{ex.units - len(ex.lost)} units on {len(ex.per_worker)} worker processes")
        if ex.skipped:
            parts.append(f"{ex.skipped} finished before")
        if ex.redone:
            parts.append(f"{len(ex.redone)} redone")
        if ex.lost:
            parts.append(f"{len(ex.lost)} lost")
        return ", ".join(parts)

    def write(self, run_dir: str | Path | None = None) -> Path:
        """Write ``stats.json`` (atomically) into ``run_dir`` (default: the record's own)."""
        self.peak_rss_mb = peak_rss_mb()
        return atomic_write_json(Path(run_dir or self.run_dir) / "stats.json", self)


def stop_reason(exc: BaseException) -> str:
    """The one line :attr:`RunStats.error` keeps for what stopped a run: a novelcraft error's own line, else
    the exception's type and message (``KeyboardInterrupt`` for Ctrl-C)."""
    if isinstance(exc, NovelcraftError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process (and finished children) in MiB, where the OS reports it."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # Linux reports KiB


def read_stats(run_dir: str | Path) -> RunStats:
    """The ``stats.json`` of a run directory."""
    path = Path(run_dir) / "stats.json"
    try:
        return RunStats.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NovelcraftError(f"no readable stats ({type(exc).__name__})", path=path, step="stats") from None

"""Units of work, what a worker runs around each one, and the in-process executor.

A command maps one module-level function over its units: ``fn(context, shared, args) -> value``. ``shared``
(the recipe, the token counter) is sent to each worker once; ``args`` (a book's source and folder) with each
unit. Around every unit the worker holds a *lease*, a small file in the unit's folder naming the worker:
a unit that finds the lease of an earlier try knows its worker died (or the run was killed) and counts the
try, and anyone can see which worker holds which unit.

Errors: the function returns its own failures (a book that cannot be read is a failed item, not an
exception); an exception escaping it is a bug and stops the run with :class:`ExecutorError` naming the unit;
a unit whose worker died more than ``max_retries`` times is returned with ``error`` set (lost), so one book
that always kills its worker fails alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import NovelcraftError
from ..io import atomic_write_text
from ..stats import ExecutorStats, WorkerStats, peak_rss_mb

#: the lease file a worker holds in a unit's folder while it runs the unit.
LEASE_FILE = ".running.json"

ReportHook = Callable[[str, str, int], None]
"""``(unit key, what, n)``: progress a unit reports from its worker (e.g. ``("novels-0", "scenes", 3)``)."""


class ExecutorError(NovelcraftError):
    """A unit of work raised an unexpected exception, or the executor cannot start."""


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of work: its key (unique in the run), its arguments, and its lease file (optional)."""

    key: str
    args: Any
    lease: str | None = None


@dataclasses.dataclass
class UnitContext:
    """What a unit function knows of where it runs: the worker, the try, and a progress channel."""

    key: str
    worker: str
    tries: int
    reporter: Callable[[str, str, int], None] | None = None

    def report(self, what: str, n: int = 1) -> None:
        """Tell the driver that ``n`` more of ``what`` are done (shown in its progress display)."""
        if self.reporter is not None:
            self.reporter(self.key, what, n)


@dataclasses.dataclass
class UnitResult:
    """A finished (or lost) unit: its value, its try, the worker that ran it, its time and memory."""

    key: str
    value: Any = None
    error: str | None = None
    tries: int = 1
    worker: str | None = None
    seconds: float = 0.0
    peak_rss_mb: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the unit ran to its end (``error`` is unset)."""
        return self.error is None


UnitFunction = Callable[[UnitContext, Any, Any], Any]
"""``fn(context, shared, args) -> value``: a module-level function (workers import it by name)."""
ResultHook = Callable[[UnitResult], None]
"""Called in the driver as each unit finishes (progress), in completion order."""


def worker_tag() -> str:
    """``HOST:PID`` of this process: how stats and leases name a worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def read_lease(path: str | Path) -> dict[str, Any] | None:
    """The lease in ``path`` (worker, pid, host, started, tries), or None when there is none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def acquire_lease(path: str | Path, worker: str) -> int:
    """Write this worker's lease; returns the try it is (1 + the tries of a lease an earlier try left)."""
    old = read_lease(path)
    tries = int(old.get("tries", 1)) + 1 if old else 1
    host, _, pid = worker.rpartition(":")
    lease = {"worker": worker, "host": host, "pid": int(pid), "started": time.time(), "tries": tries}
    atomic_write_text(path, json.dumps(lease) + "\n")
    return tries


def release_lease(path: str | Path) -> None:
    """Remove a lease (the unit finished)."""
    Path(path).unlink(missing_ok=True)


def run_unit(
    fn: UnitFunction, shared: Any, unit: Unit, reporter: Callable[[str, str, int], None] | None = None
) -> UnitResult:
    """Run one unit under its lease (in whichever process runs it); exceptions propagate."""
    worker = worker_tag()
    tries = acquire_lease(unit.lease, worker) if unit.lease else 1
    t0 = time.perf_counter()
    value = fn(UnitContext(unit.key, worker, tries, reporter), shared, unit.args)
    if unit.lease:
        release_lease(unit.lease)
    return UnitResult(
        unit.key, value, tries=tries, worker=worker, seconds=time.perf_counter() - t0, peak_rss_mb=peak_rss_mb()
    )


def lost(unit: Unit, deaths: int, cause: str) -> UnitResult:
    """The result of a unit given up after its worker died ``deaths`` times."""
    return UnitResult(
        unit.key,
        error=f"{unit.key}: its worker died {deaths} time{'s' * (deaths != 1)} while running it ({cause}); "
        "raise executor.max_retries, or look for what kills the workers (memory?)",
        tries=deaths,
    )


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment variables that cap a worker's CPU threads (tokenizers' Rayon pool, OpenMP, BLAS)."""
    if threads is None:
        return {}
    n = str(threads)
    return {"RAYON_NUM_THREADS": n, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


class Executor(Protocol):
    """Runs units of work somewhere; ``map`` returns their results in unit order."""

    name: str

    def map(
        self,
        fn: UnitFunction,
        shared: Any,
        units: Sequence[Unit],
        *,
        on_result: ResultHook | None = None,
        on_report: ReportHook | None = None,
    ) -> list[UnitResult]:
        """Run ``fn`` over ``units``; ``on_result`` hears each result as it comes, ``on_report`` progress."""

    def stats(self) -> ExecutorStats:
        """What the executor did so far: units, workers, redone and lost units."""

    def close(self) -> None:
        """Stop the workers (and a cluster the executor started)."""


class StatsBook:
    """Adds up an executor's work into an :class:`~novelcraft.runs.ExecutorStats` record."""

    def __init__(self, type_: str, workers: int, address: str | None = None) -> None:
        self.record = ExecutorStats(type=type_, workers=workers, address=address)

    def add(self, result: UnitResult, deaths: int = 0) -> None:
        """Count one finished or lost unit (``deaths``: workers the driver saw die under it)."""
        rec = self.record
        rec.units += 1
        rec.worker_deaths += deaths
        if result.tries > 1 or deaths:
            rec.redone.append(result.key)
        if not result.ok:
            rec.lost.append(result.key)
            return
        tag = result.worker or "?"
        w = rec.per_worker.setdefault(tag, WorkerStats())
        w.units += 1
        w.seconds = round(w.seconds + result.seconds, 3)
        if result.peak_rss_mb is not None:
            w.peak_rss_mb = max(w.peak_rss_mb or 0.0, result.peak_rss_mb)


class InlineExecutor:
    """``local`` with one worker: every unit in this process, one after another (no pickling)."""

    def __init__(self) -> None:
        self.name = "local"
        self._book = StatsBook("local", 1)

    def map(
        self,
        fn: UnitFunction,
        shared: Any,
        units: Sequence[Unit],
        *,
        on_result: ResultHook | None = None,
        on_report: ReportHook | None = None,
    ) -> list[UnitResult]:
        """Run the units here, in order."""
        out = []
        for unit in units:
            result = run_unit(fn, shared, unit, on_report)
            self._book.add(result)
            if on_result:
                on_result(result)
            out.append(result)
        return out

    def stats(self) -> ExecutorStats:
        """Units run so far (all by this process)."""
        return self._book.record

    def close(self) -> None:
        """Nothing to stop."""


def make_executor(config: Any) -> Executor:
    """The executor an :class:`~novelcraft.executors.config.ExecutorConfig` names (``None``: in-process)."""
    if config is None or config.inline:
        return InlineExecutor()
    if config.type == "local":
        from .local import LocalExecutor

        return LocalExecutor(config)
    from .ray_cluster import RayExecutor

    return RayExecutor(config)

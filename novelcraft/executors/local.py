"""``executor: {type: local, workers: N}``: N worker processes on this machine, one unit at a time each.

Workers are *spawned* (a fresh interpreter: no inherited threads or locks) and each gets the shared
arguments once, over its pipe, after its thread limits are set. The driver hands a unit to each idle
worker and waits on the pipes and on the processes themselves, so it knows which unit a worker held when it
died: that unit goes back to the front of the queue (to another worker, or a new one started in its place)
until it has been lost ``max_retries + 1`` times. Units run in any order; results come back in unit order.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import multiprocessing
import os
import pickle
import signal
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from ..stats import ExecutorStats
from .base import (
    ExecutorError,
    ReportHook,
    ResultHook,
    StatsBook,
    Unit,
    UnitFunction,
    UnitResult,
    lost,
    run_unit,
    thread_env,
)
from .config import ExecutorConfig

log = logging.getLogger(__name__)


def _worker_main(conn: Connection, env: dict[str, str]) -> None:
    """A worker process: set thread limits, receive the shared arguments, then run units until told to stop."""
    os.environ.update(env)  # before anything below imports a threaded library
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops the workers
    try:
        _, fn, shared = conn.recv()
        conn.send(("ready",))

        def reporter(key: str, what: str, n: int) -> None:
            conn.send(("report", key, what, n))

        while True:
            msg = conn.recv()
            if msg is None:
                return
            _, index, unit = msg
            try:
                result = run_unit(fn, shared, unit, reporter)
            except Exception as exc:  # a bug in the unit: the driver stops the run and names it
                text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
                conn.send(("error", index, text, traceback.format_exc()))
                continue
            conn.send(("done", index, result))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the driver went away


@dataclasses.dataclass
class _Worker:
    process: Any
    conn: Connection
    unit: int | None = None
    ready: bool = False


class LocalExecutor:
    """Worker processes on this machine (see the module docs)."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.workers = config.workers
        self.name = config.label()
        threads = config.threads or max(1, (os.cpu_count() or 1) // config.workers)
        self.env = thread_env(threads)
        self._book = StatsBook("local", config.workers)
        self._context = multiprocessing.get_context("spawn")

    def _start(self, fn: UnitFunction, shared: Any) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child, self.env), daemon=True)
        process.start()
        child.close()
        try:
            parent.send(("init", fn, shared))
        except (AttributeError, TypeError, pickle.PicklingError) as exc:  # a lambda, an open client, a lock...
            process.kill()
            raise ExecutorError(
                f"what the workers share cannot be sent to another process ({exc}); pass picklable arguments "
                "(an engine made from the recipe's llm section in each worker is the default)",
                step="executor",
            ) from None
        return _Worker(process, parent)

    def map(
        self,
        fn: UnitFunction,
        shared: Any,
        units: Sequence[Unit],
        *,
        on_result: ResultHook | None = None,
        on_report: ReportHook | None = None,
    ) -> list[UnitResult]:
        """Run the units on the worker processes; a unit whose worker dies is redone (see the module docs)."""
        if not units:
            return []
        results: list[UnitResult | None] = [None] * len(units)
        deaths = [0] * len(units)
        queue = collections.deque(range(len(units)))
        workers: list[_Worker] = []

        def finish(index: int, result: UnitResult) -> None:
            if deaths[index] and result.ok:
                result.tries = max(result.tries, deaths[index] + 1)
            results[index] = result
            self._book.add(result, deaths[index])
            if on_result:
                on_result(result)

        try:
            for _ in range(min(self.workers, len(units))):
                workers.append(self._start(fn, shared))
            while any(r is None for r in results):
                for w in workers:
                    if w.unit is None and queue:
                        w.unit = queue.popleft()
                        w.conn.send(("unit", w.unit, units[w.unit]))
                ready = set(wait([w.conn for w in workers] + [w.process.sentinel for w in workers]))
                for w in list(workers):
                    if w.conn in ready or w.process.sentinel in ready:
                        self._drain(w, units, finish, on_report)
                    if w.process.sentinel in ready or not w.process.is_alive():
                        self._bury(w, workers, units, deaths, queue, finish)
                        if queue and len(workers) < self.workers:
                            workers.append(self._start(fn, shared))  # in the dead one's place
        finally:
            self._stop(workers)
        return [r for r in results if r is not None]

    def _drain(self, w: _Worker, units: Sequence[Unit], finish: Any, on_report: ReportHook | None) -> None:
        """Read every message a worker has sent (a dead worker's last ones included)."""
        while True:
            try:
                if not w.conn.poll():
                    return
                msg = w.conn.recv()
            except (EOFError, OSError):
                return
            kind = msg[0]
            if kind == "ready":
                w.ready = True
            elif kind == "report":
                if on_report:
                    on_report(msg[1], msg[2], msg[3])
            elif kind == "done":
                w.unit = None
                finish(msg[1], msg[2])
            elif kind == "error":
                log.error("worker %s: %s failed:\n%s", w.process.pid, units[msg[1]].key, msg[3])
                raise ExecutorError(f"{units[msg[1]].key}: {msg[2]} (traceback above)", step="executor")

    def _bury(
        self,
        w: _Worker,
        workers: list[_Worker],
        units: Sequence[Unit],
        deaths: list[int],
        queue: collections.deque[int],
        finish: Any,
    ) -> None:
        """A worker exited: put the unit it held back in the queue (or give it up) and forget the worker."""
        w.process.join(timeout=1.0)
        workers.remove(w)
        w.conn.close()
        code = w.process.exitcode
        cause = f"exit status {code}" if code is None or code >= 0 else f"signal {signal.Signals(-code).name}"
        if not w.ready:
            raise ExecutorError(
                f"a worker process exited while starting ({cause}); the shared arguments could not be loaded",
                step="executor",
            )
        if w.unit is None:
            return
        index = w.unit
        deaths[index] += 1
        if deaths[index] > self.config.max_retries:
            log.error("%s: worker %s died (%s); given up", units[index].key, w.process.pid, cause)
            finish(index, lost(units[index], deaths[index], cause))
        else:
            log.warning("%s: worker %s died (%s); redoing it on another worker", units[index].key, w.process.pid, cause)
            queue.appendleft(index)

    def _stop(self, workers: list[_Worker]) -> None:
        for w in workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in workers:
            w.process.join(timeout=5.0)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(timeout=5.0)
            w.conn.close()

    def stats(self) -> ExecutorStats:
        """Units run so far, per worker process, with the units redone or lost after worker deaths."""
        return self._book.record

    def close(self) -> None:
        """Nothing outlives :meth:`map`: workers are stopped at its end."""

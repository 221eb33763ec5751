"""``executor: {type: ray}``: units of work as Ray tasks, on a cluster or on a Ray instance started here.

Each unit is one task reserving ``cpus_per_worker`` CPUs (and ``gpus_per_worker`` GPUs); at most ``workers``
are in flight, so a cluster is shared fairly and results stream back in order of completion. The shared
arguments are put in Ray's object store once and loaded once per worker process. Ray redoes a task whose
worker process or node died (``max_retries`` times, system failures only: an exception in the unit is a bug
and stops the run). Progress that units report travels through a small actor the driver reads while it waits.

Without ``address`` a local instance is started with ``workers x cpus_per_worker`` CPUs, listening on
127.0.0.1 only, and stopped at the end; with one (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) the cluster
is joined and left running. The nodes need novelcraft installed (the same version: results are
fingerprinted with it) and the run directory on a shared file system.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import setup_hint
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

#: seconds to wait for a TCP connection to the cluster's address before saying it is unreachable.
CONNECT_TIMEOUT_S = 10.0
#: shared arguments already loaded in this worker process, by object id (one load per process, not per task).
_SHARED: dict[str, Any] = {}


def _ray_task(fn: UnitFunction, shared_box: list[Any], unit: Unit, sink: Any) -> UnitResult:
    """The body of every task: the shared arguments from the object store (cached), then the unit."""
    import ray

    ref = shared_box[0]  # boxed in a list, so Ray passes the reference and this process loads it once
    key = ref.hex()
    if key not in _SHARED:
        _SHARED.clear()
        _SHARED[key] = ray.get(ref)

    def reporter(unit_key: str, what: str, n: int) -> None:
        sink.put.remote(unit_key, what, n)

    return run_unit(fn, _SHARED[key], unit, reporter if sink is not None else None)


class _Sink:
    """An actor collecting the progress units report, drained by the driver."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, int]] = []

    def put(self, key: str, what: str, n: int) -> None:
        """Keep one progress report."""
        self.items.append((key, what, n))

    def drain(self) -> list[tuple[str, str, int]]:
        """Every report since the last drain."""
        out, self.items = self.items, []
        return out


def _check_reachable(address: str) -> None:
    """Fail at once, in one line, when ``HOST:PORT`` takes no connection (Ray itself waits a minute and more)."""
    hostport = address.removeprefix("ray://")
    if address == "auto" or ":" not in hostport:
        return  # 'auto': Ray reads the address `ray start` left on this machine, and says so when there is none
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise ExecutorError(
            f"cannot start or join Ray ({address}): nothing answers at {hostport} ({exc.__class__.__name__}: {exc})",
            step="executor",
        ) from None


class RayExecutor:
    """Ray tasks (see the module docs)."""

    def __init__(self, config: ExecutorConfig) -> None:
        # Ray would report usage statistics over the network; a data-prep run sends nothing anywhere.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not config.address and "ray" not in sys.modules:
            # A local instance is this machine's alone: Ray's switch for single-machine clusters keeps every
            # one of its servers on 127.0.0.1 (it is read when ray is imported).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError:
            raise ExecutorError(
                f"executor type ray needs the ray package ({setup_hint('ray')})", step="executor"
            ) from None
        self.config = config
        self.name = config.label()
        self._ray = ray
        self._own = False
        self._book = StatsBook("ray", config.workers, config.address)

    def _connect(self) -> None:
        """Join or start Ray on first use (a run with nothing to do starts nothing)."""
        if not self._ray.is_initialized():
            self._init()

    def _init(self) -> None:
        ray, cfg = self._ray, self.config
        if cfg.address:
            _check_reachable(cfg.address)
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "configure_logging": False}
        try:
            if cfg.address:
                ray.init(address=cfg.address, **kwargs)
            else:
                ray.init(
                    num_cpus=max(1, round(cfg.workers * cfg.cpus_per_worker)),
                    num_gpus=round(cfg.workers * cfg.gpus_per_worker) if cfg.gpus_per_worker else None,
                    include_dashboard=False,
                    **kwargs,
                )
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError: Ray says which
            where = cfg.address or "a local instance"
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutorError(f"cannot start or join Ray ({where}): {text}", step="executor") from None
        self._own = True

    def map(
        self,
        fn: UnitFunction,
        shared: Any,
        units: Sequence[Unit],
        *,
        on_result: ResultHook | None = None,
        on_report: ReportHook | None = None,
    ) -> list[UnitResult]:
        """Run the units as Ray tasks, ``workers`` at a time; a task lost with its worker is redone by Ray."""
        if not units:
            return []
        self._connect()
        ray, cfg = self._ray, self.config
        threads = cfg.threads or max(1, int(cfg.cpus_per_worker))
        options: dict[str, Any] = {
            "max_retries": cfg.max_retries,
            "retry_exceptions": False,
            "num_cpus": cfg.cpus_per_worker,
            "runtime_env": {"env_vars": thread_env(threads)},
        }
        if cfg.gpus_per_worker:
            options["num_gpus"] = cfg.gpus_per_worker
        task = ray.remote(_ray_task).options(**options)
        sink = ray.remote(_Sink).options(num_cpus=0).remote() if on_report else None
        box = [ray.put(shared)]
        results: list[UnitResult | None] = [None] * len(units)
        index_of: dict[Any, int] = {}
        nxt = 0
        try:
            while any(r is None for r in results):
                while nxt < len(units) and len(index_of) < cfg.workers:
                    index_of[task.remote(fn, box, units[nxt], sink)] = nxt
                    nxt += 1
                done, _ = ray.wait(list(index_of), num_returns=1, timeout=0.5)
                if sink is not None and on_report is not None:
                    for item in ray.get(sink.drain.remote()):
                        on_report(*item)
                for ref in done:
                    i = index_of.pop(ref)
                    results[i] = self._result(ref, units[i])
                    self._book.add(results[i])  # type: ignore[arg-type]
                    if on_result:
                        on_result(results[i])  # type: ignore[arg-type]
        finally:
            for ref in index_of:
                ray.cancel(ref, force=True)
            if sink is not None:
                ray.kill(sink)
        return [r for r in results if r is not None]

    def _result(self, ref: Any, unit: Unit) -> UnitResult:
        exc = self._ray.exceptions
        try:
            result: UnitResult = self._ray.get(ref)
            return result
        except exc.RayTaskError as err:  # an exception in the unit: a bug
            cause = err.cause if getattr(err, "cause", None) is not None else err
            text = f"{type(cause).__name__}: {cause}".splitlines()[0]
            log.error("%s failed on a Ray worker:\n%s", unit.key, err)
            raise ExecutorError(f"{unit.key}: {text} (traceback above)", step="executor") from None
        except (exc.WorkerCrashedError, exc.NodeDiedError, exc.OutOfMemoryError, exc.ObjectLostError) as err:
            return lost(unit, self.config.max_retries + 1, type(err).__name__)

    def stats(self) -> ExecutorStats:
        """Units run so far, per worker process (``HOST:PID``), with the units redone (their lease says so)."""
        return self._book.record

    def close(self) -> None:
        """Stop the local Ray instance this executor started (a joined cluster keeps running)."""
        if self._own and self._ray.is_initialized():
            self._ray.shutdown()
            self._own = False

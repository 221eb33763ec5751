"""Executors: where the units of work of a command (books, novels) run — in this process, in worker
processes of this machine, or as tasks on a Ray cluster. Shared by prep, compile and generate.

* :mod:`~novelcraft.executors.config` — :class:`ExecutorConfig`, the ``executor:`` section of a recipe;
* :mod:`~novelcraft.executors.base` — :class:`Unit`, :class:`UnitResult`, leases, :func:`make_executor`
  and the in-process executor;
* :mod:`~novelcraft.executors.local` — worker processes on this machine;
* :mod:`~novelcraft.executors.ray_cluster` — Ray tasks (the ``ray`` extra).

Every executor runs the same function over the same units and returns results in unit order, so the
files a run writes do not depend on where it ran. Nothing here imports Ray until a Ray executor is made.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "ExecutorConfig": "config",
    "Executor": "base",
    "ExecutorError": "base",
    "Unit": "base",
    "UnitContext": "base",
    "UnitResult": "base",
    "make_executor": "base",
    "read_lease": "base",
    "LEASE_FILE": "base",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)

"""Unit functions the executor tests send to worker processes (importable by name from this folder)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def scaled(ctx, factor, value):
    """``value * factor``, reporting one ``done`` per unit; a short sleep lets both workers take units."""
    time.sleep(0.05)
    ctx.report("done")
    return value * factor


def dies_once(ctx, folder, value):
    """SIGKILL its own process the first time it meets ``value`` 3 (a marker file remembers), else ``-value``."""
    marker = Path(folder) / f"died-{value}"
    if value == 3 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return -value


def always_dies(ctx, shared, value):
    """Kills its process for ``value`` 2, else returns ``value``."""
    if value == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def raises(ctx, shared, value):
    """A bug in the unit: raises for ``value`` 1."""
    if value == 1:
        raise ValueError("a bug in the unit")
    return value


def where(ctx, shared, value):
    """The worker and try that ran the unit, and the thread limit its environment has."""
    return ctx.worker, ctx.tries, os.environ.get("OMP_NUM_THREADS")

"""Peak resident memory of a child process tree, sampled while it runs.

``wait4``'s ``ru_maxrss`` is not the child's own peak on Linux: a child made by fork/vfork + exec starts with
the parent's high-water mark (``exec`` records the old address space's peak), so a 9 GB test runner makes
every child it launches report at least 9 GB. Each process's own ``VmHWM`` (``/proc/PID/status``) starts
afresh at ``exec``; this module samples it for the process and all of its descendants.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_PROC = Path("/proc")


def _hwm_bytes(pid: int) -> int:
    """``VmHWM`` of one process in bytes (0 if it is gone or the system has no ``/proc``)."""
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return 0


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from each process's parent in ``/proc/PID/stat``."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # the command name (field 2) may hold spaces and parentheses: the parent pid follows the last ')'
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


class TreePeak:
    """Sample the largest ``VmHWM`` in the process tree under ``pid`` every ``interval`` seconds.

    The result is the peak of the biggest single process (as ``ru_maxrss`` means it), sampled until
    :meth:`stop`; a process that grows in its last ``interval`` before exiting is missed by that much.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval = pid, interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tree-peak-{pid}", daemon=True)

    @staticmethod
    def supported() -> bool:
        """Whether this system exposes per-process high-water marks (Linux ``/proc``)."""
        return _hwm_bytes(os.getpid()) > 0

    def start(self) -> TreePeak:
        """Start sampling in a background thread; returns ``self``."""
        self._thread.start()
        return self

    def sample(self) -> None:
        """Take one sample now (also called by the sampling thread)."""
        for pid in descendants(self.pid):
            self.peak_bytes = max(self.peak_bytes, _hwm_bytes(pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> int:
        """Stop sampling; the peak seen, in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak_bytes

"""Find the virtualenv of a training tool and run commands in it, streaming their output.

Axolotl and MS-SWIFT pin conflicting versions of transformers/peft/trl, so each lives in its own venv
made by ``scripts/toolenv.sh`` under ``$NOVELCRAFT_TOOLENV_DIR`` (default
``~/.cache/novelcraft/toolenvs/<tool>-<hash>``); ``$NOVELCRAFT_AXOLOTL_VENV`` /
``$NOVELCRAFT_SWIFT_VENV`` or a recipe's ``toolenv`` point at another one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, TextIO

from ..errors import NovelcraftError
from ..procmem import TreePeak

log = logging.getLogger(__name__)

#: Written last by scripts/toolenv.sh: a venv without it is an interrupted install.
COMPLETE_MARKER = ".novelcraft-toolenv-complete"


class ToolEnvError(NovelcraftError):
    """A tool virtualenv is missing or broken."""


def toolenv_root() -> Path:
    """Where the tool virtualenvs live (``NOVELCRAFT_TOOLENV_DIR``, else ``~/.cache/novelcraft/toolenvs``)."""
    return Path(os.environ.get("NOVELCRAFT_TOOLENV_DIR") or Path.home() / ".cache" / "novelcraft" / "toolenvs")


def _how_to_create(tool: str) -> str:
    return (
        f"create it with `bash scripts/toolenv.sh {tool}` from a novelcraft checkout "
        f"(or point NOVELCRAFT_{tool.upper()}_VENV or the recipe's toolenv at a venv with {tool} installed)"
    )


def find_toolenv(tool: str, explicit: str | Path | None = None) -> Path:
    """The venv folder of ``tool``: ``explicit``, else ``$NOVELCRAFT_<TOOL>_VENV``, else the newest
    complete venv made by ``scripts/toolenv.sh``. Raises :class:`ToolEnvError` saying how to make one."""
    chosen = explicit or os.environ.get(f"NOVELCRAFT_{tool.upper()}_VENV")
    if chosen:
        venv = Path(chosen).expanduser()
        if not (venv / "bin" / "python").exists():
            raise ToolEnvError(
                f"no Python in this {tool} virtualenv; {_how_to_create(tool)}", path=venv, step="toolenv"
            )
        return venv
    root = toolenv_root()
    complete = [p for p in root.glob(f"{tool}-*") if (p / COMPLETE_MARKER).is_file()] if root.is_dir() else []
    if not complete:
        raise ToolEnvError(f"no {tool} virtualenv in {root}; {_how_to_create(tool)}", step="toolenv")
    return max(complete, key=lambda p: (p / COMPLETE_MARKER).stat().st_mtime)


def tool_python(venv: Path) -> Path:
    """The interpreter of a tool virtualenv."""
    return venv / "bin" / "python"


def tool_env(venv: Path, *, cpu: bool = False, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a tool process: the venv first on PATH, no telemetry, CPU settings."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("WANDB_MODE", "disabled")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
        # Several threads per process were 5-7x slower than one on small CPU runs.
        env.setdefault("OMP_NUM_THREADS", "1")
    if extra:
        env.update(extra)
    return env


class StreamResult(NamedTuple):
    """Exit status of a streamed command and the peak resident memory of its process tree."""

    returncode: int
    #: peak RSS of the largest process in the command's tree, in bytes; 0 if unknown
    peak_rss_bytes: int


def _wait(proc: subprocess.Popen, sampler: TreePeak | None) -> StreamResult:
    if sampler is not None:
        sampler.sample()  # the output has ended: one last look before the tree is reaped
        proc.wait()
        return StreamResult(proc.returncode, sampler.stop())
    if not hasattr(os, "wait4"):
        return StreamResult(proc.wait(), 0)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Without /proc: ru_maxrss (KiB), which on Linux starts at the parent's own peak (see novelcraft.procmem).
    return StreamResult(proc.returncode, usage.ru_maxrss * 1024)


def run_streaming(
    cmd: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    log_file: Path | None = None,
    cwd: Path | None = None,
    echo: TextIO | None = sys.stdout,
) -> StreamResult:
    """Run ``cmd``, copying each output line (stdout and stderr merged) to ``echo`` and ``log_file``
    as it arrives. Returns the exit status and the peak RSS of the process tree."""
    argv = [str(c) for c in cmd]
    log.info("running %s", " ".join(argv))
    fh = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115 (closed in finally)
    try:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=str(cwd) if cwd else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        assert proc.stdout is not None
        sampler = TreePeak(proc.pid).start() if TreePeak.supported() else None
        try:
            for line in proc.stdout:
                if echo is not None:
                    echo.write(line)
                    echo.flush()
                if fh:
                    fh.write(line)
            return _wait(proc, sampler)
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if sampler is not None:
                sampler.stop()
            raise
    finally:
        if fh:
            fh.close()


def run_captured(
    cmd: Sequence[str | Path], *, env: Mapping[str, str], timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run ``cmd`` and capture stdout and stderr (for checks whose output is parsed)."""
    return subprocess.run(
        [str(c) for c in cmd], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )

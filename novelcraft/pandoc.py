"""The pandoc 3 binary (from ``pypandoc-binary``), shared by EPUB ingest and EPUB output.

:func:`run_pandoc` runs it as a child that dies with its parent (a killed novelcraft leaves no pandoc
behind) and turns failures into one error naming the file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import NovelcraftError, setup_hint

INSTALL_HINT = f"pandoc is missing: it comes with pypandoc-binary, a dependency of novelcraft: {setup_hint('dev')}"


def pandoc_path() -> str:
    """Path of the pandoc binary bundled by ``pypandoc-binary`` (or found on PATH); pandoc 3 is required."""
    try:
        import pypandoc
    except ImportError:
        raise NovelcraftError(INSTALL_HINT, step="pandoc") from None
    try:
        path = pypandoc.get_pandoc_path()
        version = pypandoc.get_pandoc_version()
    except OSError:
        raise NovelcraftError(INSTALL_HINT, step="pandoc") from None
    if int(version.split(".")[0]) < 3:
        raise NovelcraftError(f"pandoc {version} is too old; pandoc 3.x is required (pypandoc-binary)", step="pandoc")
    return path


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # Linux: deliver SIGKILL to pandoc when novelcraft dies, however it dies.
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_pandoc(
    args: Sequence[str], *, path: str | Path, step: str, timeout: float = 600, env: dict[str, str] | None = None
) -> bytes:
    """Run ``pandoc ARGS`` (with ``env`` added to the environment) and return its stdout; a failure or timeout
    is one error naming ``path``."""
    cmd = [pandoc_path(), *args]
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, preexec_fn=preexec, env=full_env)
    except subprocess.TimeoutExpired:
        raise NovelcraftError(f"pandoc did not finish within {timeout:.0f} s", path=path, step=step) from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise NovelcraftError(f"pandoc failed: {err[-1] if err else proc.returncode}", path=path, step=step)
    return proc.stdout

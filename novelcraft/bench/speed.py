"""Run the project's speed benchmarks (``benchmarks/*.py``) as subprocesses and collect their figures.

Every benchmark script follows one contract (see ``benchmarks/README.md``): it prints a Markdown
report to stdout and, with ``--json OUT``, writes its numbers as JSON. Each runs in its own process
with a timeout; a script that is expected but absent is reported as ``not available``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..models import Record

log = logging.getLogger(__name__)

SpeedStatus = Literal["ok", "failed", "timeout", "not available"]


class SpeedResult(Record):
    """One speed benchmark's run: status, time, command, its JSON figures and its Markdown report."""

    name: str
    status: SpeedStatus
    seconds: float | None = None
    command: list[str] = Field(default_factory=list)
    figures: dict[str, Any] | None = Field(None, description="the benchmark's --json output")
    markdown: str | None = Field(None, description="the benchmark's stdout report")
    error: str | None = None


def discover_benchmarks(bench_dir: str | Path, expected: Sequence[str] = ()) -> list[str]:
    """Names (file stems) of ``bench_dir/*.py`` plus the ``expected`` names, in that order, no duplicates."""
    found = sorted(p.stem for p in Path(bench_dir).glob("*.py") if not p.name.startswith("_"))
    return list(dict.fromkeys([*found, *expected]))


def run_speed_benchmark(
    script: str | Path, *, args: Sequence[str] = (), timeout_s: float = 900, cwd: str | Path | None = None
) -> SpeedResult:
    """Run one benchmark script with ``--json`` and collect its figures (never raises for the script's failures)."""
    script = Path(script)
    name = script.stem
    if not script.is_file():
        return SpeedResult(name=name, status="not available", error=f"{script} does not exist")
    with tempfile.TemporaryDirectory(prefix="novelcraft-speed-") as tmp:
        out_json = Path(tmp) / f"{name}.json"
        cmd = [sys.executable, str(script), "--json", str(out_json), *args]
        # the script imports novelcraft: make this very checkout importable even when it is not installed
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return SpeedResult(
                name=name,
                status="timeout",
                seconds=round(time.perf_counter() - t0, 2),
                command=cmd,
                error=f"no result within {timeout_s:.0f} s",
            )
        secs = round(time.perf_counter() - t0, 2)
        figures = None
        if out_json.is_file():
            try:
                figures = json.loads(out_json.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                log.warning("%s wrote invalid JSON: %s", name, exc)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            return SpeedResult(
                name=name,
                status="failed",
                seconds=secs,
                command=cmd,
                figures=figures,
                markdown=proc.stdout or None,
                error=f"exit {proc.returncode}: " + " | ".join(tail),
            )
        return SpeedResult(
            name=name, status="ok", seconds=secs, command=cmd, figures=figures, markdown=proc.stdout or None
        )


def run_speed_benchmarks(
    bench_dir: str | Path,
    *,
    names: Sequence[str] | None = None,
    expected: Sequence[str] = (),
    args: dict[str, list[str]] | None = None,
    timeout_s: float = 900,
    cwd: str | Path | None = None,
) -> list[SpeedResult]:
    """Run every benchmark of ``bench_dir`` (or only ``names``) one after the other; ``expected`` names
    without a script are listed as ``not available``."""
    bench_dir = Path(bench_dir)
    todo = list(names) if names else discover_benchmarks(bench_dir, expected)
    results = []
    for name in todo:
        log.info("speed benchmark %s ...", name)
        results.append(
            run_speed_benchmark(bench_dir / f"{name}.py", args=(args or {}).get(name, []), timeout_s=timeout_s, cwd=cwd)
        )
    return results


def flatten_figures(obj: Any, prefix: str = "", limit: int = 40) -> list[tuple[str, float]]:
    """Numeric leaves of a JSON value as ``(dotted.key, number)``, depth-first, at most ``limit``."""
    out: list[tuple[str, float]] = []

    def walk(x: Any, key: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(x, bool):
            return
        if isinstance(x, (int, float)):
            out.append((key, float(x)))
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(x, list):
            for i, v in enumerate(x[:8]):
                walk(v, f"{key}[{i}]")

    walk(obj, prefix)
    return out

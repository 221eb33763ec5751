"""The public API: what importing novelcraft loads, and what its names are."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_bench_loads_nothing_heavy():
    import subprocess

    code = "import sys, novelcraft.bench; heavy = [m for m in ('numpy', 'matplotlib', 'torch', 'tokenizers') if m in sys.modules]; print(heavy)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert out == "[]"

"""Finding the virtualenv of a training tool."""

from __future__ import annotations

import os
import sys

import pytest

from novelcraft.procmem import TreePeak
from novelcraft.train.toolenv import ToolEnvError, find_toolenv, run_streaming


def test_missing_tool_venv_says_how_to_create_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVELCRAFT_TOOLENV_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("NOVELCRAFT_AXOLOTL_VENV", raising=False)
    with pytest.raises(ToolEnvError, match=r"bash scripts/toolenv.sh axolotl"):
        find_toolenv("axolotl")
    half = tmp_path / "none" / "axolotl-0123"
    (half / "bin").mkdir(parents=True)
    with pytest.raises(ToolEnvError):  # no completion marker: an interrupted install is not used
        find_toolenv("axolotl")


@pytest.mark.skipif(not TreePeak.supported(), reason="needs Linux /proc for per-process peaks")
def test_run_streaming_measures_the_childs_own_peak_not_the_parents(tmp_path):
    """A parent holding 300 MB launches a child that allocates 100 MB: the child's peak is ~100 MB
    (wait4's ru_maxrss would start at the parent's 300 MB), and a grandchild's larger peak is seen."""
    ballast = bytearray(300 * 2**20)  # touched pages: the parent's RSS grows by 300 MB
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    alloc = "b = bytearray({mb} * 2**20); [b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; import time; time.sleep(0.6)"
    env = dict(os.environ)
    one = run_streaming([sys.executable, "-c", alloc.format(mb=100)], env=env, echo=None)
    assert one.returncode == 0 and 100 * 2**20 < one.peak_rss_bytes < 250 * 2**20, one.peak_rss_bytes / 2**20
    nested = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {alloc.format(mb=150)!r}], check=True)"
    two = run_streaming([sys.executable, "-c", nested], env=env, echo=None)
    assert two.returncode == 0 and 150 * 2**20 < two.peak_rss_bytes < 250 * 2**20, two.peak_rss_bytes / 2**20
    del ballast

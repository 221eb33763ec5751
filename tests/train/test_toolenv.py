"""Finding the virtualenv of a training tool."""

from __future__ import annotations

import pytest

from novelcraft.train.toolenv import ToolEnvError, find_toolenv


def test_missing_tool_venv_says_how_to_create_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVELCRAFT_TOOLENV_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("NOVELCRAFT_AXOLOTL_VENV", raising=False)
    with pytest.raises(ToolEnvError, match=r"bash scripts/toolenv.sh axolotl"):
        find_toolenv("axolotl")
    half = tmp_path / "none" / "axolotl-0123"
    (half / "bin").mkdir(parents=True)
    with pytest.raises(ToolEnvError):  # no completion marker: an interrupted install is not used
        find_toolenv("axolotl")

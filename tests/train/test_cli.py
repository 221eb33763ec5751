"""``novelcraft train`` / ``merge`` / ``make-tiny-moe``: argument parsing and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.cli import build_parser
from novelcraft.errors import NovelcraftError

ROOT = Path(__file__).resolve().parents[2]
SMOKE = {"axolotl": ROOT / "recipes/train/axolotl-cpu-smoke.yaml", "swift": ROOT / "recipes/train/swift-cpu-smoke.yaml"}


def test_cli_register_parses_train_and_merge(tmp_path, monkeypatch):
    parser = build_parser()
    args = parser.parse_args(["train", str(SMOKE["axolotl"]), "lora.r=4", "--check"])
    assert args.check and args.overrides == ["lora.r=4"] and not args.estimate
    assert parser.parse_args(["train", str(SMOKE["axolotl"]), "--estimate"]).estimate
    args = parser.parse_args(["merge", "runs/x/output", "runs/x/merged", "--gguf", "x.gguf"])
    assert args.dtype == "bfloat16"
    monkeypatch.setenv("NOVELCRAFT_TOOLENV_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("NOVELCRAFT_SWIFT_VENV", raising=False)
    args = parser.parse_args(["train", str(SMOKE["swift"]), f"output_dir={tmp_path}", "--check"])
    with pytest.raises(NovelcraftError, match="no swift virtualenv"):
        args.command_obj.run(args)
    args = parser.parse_args(["merge", str(tmp_path), str(tmp_path / "m"), "--gguf", str(tmp_path / "m.gguf")])
    monkeypatch.delenv("LLAMA_CPP_CONVERT", raising=False)
    with pytest.raises(NovelcraftError, match="convert_hf_to_gguf.py"):
        args.command_obj.run(args)


def test_check_prints_the_estimate_before_the_tool_check(tmp_path, monkeypatch, capsys, tiny_model):
    """--check prints the estimate, then runs the tool's own validation (here: no venv, a clear error)."""
    parser = build_parser()
    monkeypatch.setenv("NOVELCRAFT_TOOLENV_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("NOVELCRAFT_AXOLOTL_VENV", raising=False)
    args = parser.parse_args(
        ["train", str(SMOKE["axolotl"]), f"output_dir={tmp_path}", f"base_model={tiny_model}", "--check"]
    )
    with pytest.raises(NovelcraftError, match="no axolotl virtualenv"):
        args.command_obj.run(args)
    out = capsys.readouterr().out
    assert "estimate for smoke-axolotl (axolotl)" in out and "mlp.experts.gate_up_proj" in out

"""``novelcraft generate``: the command checks its arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.errors import NovelcraftError

ROOT = Path(__file__).resolve().parents[2]


def test_cli_wrapper_checks_its_arguments():
    from novelcraft.cli import build_parser

    parser = build_parser()
    recipe = str(ROOT / "recipes" / "generate" / "cpu-smoke.yaml")
    args = parser.parse_args(["generate", recipe, "name=x", "--branch-from", "2"])
    assert args.branch_from == 2 and args.overrides == ["name=x"] and not args.resume
    with pytest.raises(NovelcraftError, match="--branch-from needs --source"):
        args.command_obj.run(args)
    args = parser.parse_args(["generate", str(ROOT / "recipes" / "prep" / "default.yaml")])
    with pytest.raises(NovelcraftError, match="expected a recipe of kind 'generate'"):
        args.command_obj.run(args)

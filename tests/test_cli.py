"""``novelcraft`` command line: the registry in pipeline order, one-line errors, interrupts."""

from __future__ import annotations

import argparse

import pytest

from novelcraft import __version__, cli
from novelcraft.commands import Command


def test_registry_in_pipeline_order() -> None:
    names = [c.name for c in cli.registry()]
    assert names[:6] == ["prep", "inspect", "compile", "continuation", "continue", "train"]
    assert names.index("generate") < names.index("bench") < names.index("validate")
    assert len(names) == len(set(names))
    assert all(":" in c.handler and c.help for c in cli.registry())


def test_version_and_help(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"novelcraft {__version__}"
    with pytest.raises(SystemExit):
        cli.main([])


def test_errors_are_one_line_with_status_1(tmp_path, capsys) -> None:
    missing = tmp_path / "missing.yaml"
    assert cli.main(["compile", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"novelcraft: error: {missing}: cannot read recipe") and err.count("\n") == 1


def test_interrupt_exits_130(monkeypatch, capsys) -> None:
    def interrupted(self: Command, args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(Command, "run", interrupted)
    assert cli.main(["validate", "x.jsonl"]) == 130
    assert "interrupted; finished stages are kept" in capsys.readouterr().err


def test_overrides_may_follow_flags(monkeypatch, capsys) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(Command, "run", lambda self, args: seen.append(args) or 0)
    assert cli.main(["prep", "r.yaml", "a.b=1", "--force", "c=2", "--no-progress", "d.e=[x, y]"]) == 0
    args = seen[0]
    assert args.recipe == "r.yaml" and args.overrides == ["a.b=1", "c=2", "d.e=[x, y]"]
    assert args.force and args.no_progress
    # anything else after a flag is still refused, as is an override given to a command that takes none
    with pytest.raises(SystemExit) as exc:
        cli.main(["prep", "r.yaml", "--force", "stray"])
    assert exc.value.code == 2 and "unrecognized arguments: stray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["prep", "r.yaml", "--bogus", "a=1"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["validate", "x.jsonl", "--recipe", "r.yaml", "a=1"])
    assert "unrecognized arguments: a=1" in capsys.readouterr().err

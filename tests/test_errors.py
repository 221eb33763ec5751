"""``novelcraft.errors``: one-line errors, and install hints that name this checkout's set-up command."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from novelcraft.errors import NovelcraftError, RecipeError, setup_hint

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "novelcraft"
#: modules that still tell users to ``pip install`` while they are being rewritten.
PENDING_HINTS: set[str] = set()


def package_sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "resources" not in p.relative_to(PACKAGE).parts)


def test_error_is_one_line_path_step_cause() -> None:
    err = RecipeError("unknown key", path=Path("r.yaml"), step="overrides")
    assert str(err) == "r.yaml: overrides: unknown key" and isinstance(err, NovelcraftError)
    assert str(NovelcraftError("cause")) == "cause"


def test_setup_hint_names_the_setup_script() -> None:
    assert setup_hint("dev,bench") == "bash scripts/setup.sh dev,bench"
    assert (ROOT / "scripts" / "setup.sh").is_file()


def test_every_hinted_extra_exists() -> None:
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    )
    hinted: dict[str, str] = {}
    for path in package_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup_hint":
                (arg,) = node.args
                assert isinstance(arg, ast.Constant), f"{path}:{node.lineno}: give setup_hint a literal"
                hinted[f"{path.relative_to(ROOT)}:{node.lineno}"] = arg.value
    assert len(hinted) >= 8
    unknown = {where: value for where, value in hinted.items() if not set(value.split(",")) <= extras}
    assert not unknown, f"extras not in pyproject: {unknown}"


def test_no_message_tells_users_to_pip_install() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in package_sources()
        if str(path.relative_to(PACKAGE)) not in PENDING_HINTS
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "pip install" in line
    ]
    assert not found, f"name the set-up command (setup_hint) instead: {found}"

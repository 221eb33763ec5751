"""``novelcraft.prompts``: packaged prompt templates, overrides from a folder, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.errors import RecipeError
from novelcraft.models import Instruction, RunningSummary
from novelcraft.prompts import PROMPT_NAMES, field_guide, load_prompt


def test_every_packaged_prompt_loads() -> None:
    for name in PROMPT_NAMES:
        p = load_prompt(name)
        assert p.name == name and p.source.endswith(f"{name}.yaml") and len(p.digest) == 16
        assert {"system", "user", "retry", "compress"} <= set(p.texts)
    assert load_prompt("instruction").schema is Instruction


def test_a_folder_overrides_the_packaged_prompt(tmp_path: Path) -> None:
    (tmp_path / "summary.yaml").write_text(
        "version: 2\nschema: novelcraft.models:RunningSummary\nsystem: S $who\nuser: U\nretry: R $message\n"
        "compress: C $message\n",
        encoding="utf-8",
    )
    p = load_prompt("summary", tmp_path)
    assert (p.version, p.schema, p.source) == (2, RunningSummary, str(tmp_path / "summary.yaml"))
    assert p.messages(who="me") == [{"role": "system", "content": "S me"}, {"role": "user", "content": "U"}]
    assert p.feedback(who="me")("compress", "too long") == "C too long"
    with pytest.raises(RecipeError, match=r"prompts: prompt 'summary.system' needs a value for 'who'"):
        p.render("system")
    assert load_prompt("instruction", tmp_path).source.startswith("novelcraft/resources/prompts/")


def test_broken_templates_are_named(tmp_path: Path) -> None:
    (tmp_path / "summary.yaml").write_text("version: 1\nschema: x:Y\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="missing keys: system, user, retry, compress"):
        load_prompt("summary", tmp_path)
    with pytest.raises(RecipeError, match="no prompt template named 'nope'"):
        load_prompt("nope")


def test_field_guide_names_word_limits() -> None:
    guide = field_guide(RunningSummary).splitlines()
    assert len(guide) == len(RunningSummary.model_fields)
    assert guide[0].startswith("- scene_end_state") and "25 words" in guide[0]

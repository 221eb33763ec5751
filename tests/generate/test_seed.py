"""``novelcraft.generate.seed``: shipped seeds load, invalid ones name the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.generate import StorySeed, load_seed
from novelcraft.generate.seed import resolve_seed_paths

ROOT = Path(__file__).resolve().parents[2]


SEEDS = ROOT / "data" / "seeds"


def test_shipped_seeds_load():
    paths = resolve_seed_paths([SEEDS])
    assert len(paths) >= 2
    seeds = [load_seed(p) for p in paths]
    assert all(s.premise.strip() and s.title for s in seeds)
    assert any(s.world_context is not None for s in seeds) and any(s.world_context is None for s in seeds)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("title: X\npremis: a long enough premise for the check\n", "premis: unknown key"),
        ("title: X\n", "premise: Field required"),
        ("title: X\npremise: a long enough premise here\ntarget_scenes: 0\n", "target_scenes"),
        (
            "title: X\npremise: a long enough premise here\nworld_context: {tone_style: x}\n",
            "world_context.world_rules",
        ),
        ("title: [unclosed\n", "invalid YAML at line"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_invalid_seed_names_file_and_field(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(NovelcraftError) as err:
        load_seed(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: seed: ") and needle in msg


def test_seed_json_schema_is_strict():
    schema = StorySeed.model_json_schema()
    assert schema["additionalProperties"] is False and "premise" in schema["required"]

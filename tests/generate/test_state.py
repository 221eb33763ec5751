"""``novelcraft.generate.state``: the checkpoint of a novel, its settings key and its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.generate import StorySeed
from novelcraft.generate.state import (
    NovelState,
    SceneRecord,
    adapter_digest,
    find_states,
    load_state,
    save_state,
    settings_key,
    state_path,
)


def state(**kw) -> NovelState:
    data = {
        "novel_id": "n1",
        "seed_path": "seeds/a.yaml",
        "seed": StorySeed(title="T", premise="A premise long enough to pass."),
        "key": "k",
        "settings": {"a": 1},
        "system_prompt": "You are a novelist.",
    }
    data.update(kw)
    return NovelState.model_validate(data)


def test_a_new_novel_is_not_finished() -> None:
    s = state()
    assert s.total == 0 and not s.finished
    assert s.summary_before(1, "opening") == "opening" and s.summary_before(3, "opening") == "opening"
    s.scenes.append(SceneRecord(index=1, text="It begins.", words=2))
    assert s.summary_before(2, "opening") == "opening"  # scene 1 has no summary yet


def test_settings_key_ignores_key_order() -> None:
    assert settings_key({"a": 1, "b": [1, 2]}) == settings_key({"b": [1, 2], "a": 1})
    assert settings_key({"a": 1}) != settings_key({"a": 2})


def test_adapter_digest_follows_the_weights(tmp_path: Path) -> None:
    assert adapter_digest(None) is None
    (tmp_path / "adapter_config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights")
    first = adapter_digest(str(tmp_path))
    (tmp_path / "adapter_model.safetensors").write_bytes(b"retrained")
    assert adapter_digest(str(tmp_path)) != first


def test_save_load_and_find(tmp_path: Path) -> None:
    novel_dir = tmp_path / "novels" / "n1"
    path = save_state(state(), novel_dir)
    assert path == state_path(novel_dir) and load_state(path) == state()
    assert find_states(tmp_path) == [path]
    path.write_text(json.dumps({"version": 1}), encoding="utf-8")
    with pytest.raises(NovelcraftError, match=r"resume: not a valid checkpoint \(novel_id: Field required\)"):
        load_state(path)
    with pytest.raises(NovelcraftError, match="resume: cannot read checkpoint"):
        load_state(tmp_path / "missing.json")

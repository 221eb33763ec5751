"""Per-novel checkpoints: everything needed to continue a novel, written atomically after each step.

``novels/<novel_id>/state.json`` holds the seed, the world context, the outline, every finished scene with
the running summary written after it, and ``settings``: the content that decides what the next scene
will be (seed, persona, engine identity with the adapter's hash, sampling, outline/scene/summary settings,
prompt templates). Its hash, ``key``, must match the recipe on ``--resume``; a run with other settings
branches into a new run directory instead, so nothing generated is ever overwritten.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from ..errors import NovelcraftError
from ..io import atomic_write_json, sha256_file
from ..models import Record, RunningSummary, WorldContext
from .outline import Outline
from .seed import StorySeed

STATE_FILE = "state.json"


class SceneRecord(Record):
    """One generated scene and the running summary written after it."""

    index: int = Field(..., ge=1)
    text: str = Field(..., min_length=1)
    words: int = Field(..., ge=0)
    attempts: int = Field(1, ge=1)
    notes: list[str] = Field(default_factory=list, description="retry notes the accepted answer was prompted with")
    flagged: bool = False
    flag_reason: str | None = None
    trimmed: bool = Field(False, description="cut at max_tokens and trimmed to its last sentence end")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = Field(0.0, description="generation time of the accepted answer (engine-reported)")
    summary: RunningSummary | None = Field(None, description="the running summary after this scene")
    summary_done: bool = False
    summary_flagged: bool = False
    summary_flag_reason: str | None = None
    summary_seconds: float = 0.0
    summary_prompt_tokens: int = 0
    summary_completion_tokens: int = 0


class NovelState(Record):
    """Checkpoint of one novel (see the module docstring)."""

    version: Literal[1] = 1
    novel_id: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed_path: str
    sample: int = Field(1, ge=1)
    seed: StorySeed
    key: str
    settings: dict[str, Any]
    system_prompt: str = Field(..., min_length=1)
    world_context: WorldContext | None = None
    world_context_text: str | None = Field(None, description="rendered world context used in every scene prompt")
    world_context_flagged: bool = False
    outline: Outline | None = None
    scenes: list[SceneRecord] = Field(default_factory=list)
    branched_from: dict[str, Any] | None = Field(None, description="run, scene and key this novel was branched from")

    @property
    def total(self) -> int:
        """Scenes the outline plans (0 before there is one)."""
        return len(self.outline.scenes) if self.outline else 0

    @property
    def finished(self) -> bool:
        """Whether every planned scene is written and summarised."""
        return self.outline is not None and len(self.scenes) == self.total and all(s.summary_done for s in self.scenes)

    def summary_before(self, position: int, opening: str) -> str:
        """Running summary in the prompt of scene ``position`` (1-based), without its progress line."""
        if position == 1:
            return opening
        for sc in reversed(self.scenes[: position - 1]):
            if sc.summary is not None:
                return sc.summary.render()
        return opening


def settings_key(settings: dict[str, Any]) -> str:
    """Content hash of the settings a novel was started with (a resume must match it)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def adapter_digest(adapter: str | None) -> str | None:
    """Hash of a LoRA adapter's config and weights (an adapter retrained in place changes the key)."""
    if not adapter:
        return None
    folder = Path(adapter).expanduser()
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        f = folder / name
        if f.is_file():
            h.update(name.encode())
            h.update(sha256_file(f).encode())
    return h.hexdigest()


def state_path(novel_dir: str | Path) -> Path:
    """The state file of the novel in ``novel_dir``."""
    return Path(novel_dir) / STATE_FILE


def save_state(state: NovelState, novel_dir: str | Path) -> Path:
    """Write ``state`` to its file in ``novel_dir``, atomically."""
    return atomic_write_json(state_path(novel_dir), state)


def load_state(path: str | Path) -> NovelState:
    """Read a checkpoint (summaries kept over budget, flagged, are accepted)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        return NovelState.model_validate_json(text, context={"word_budgets": False})
    except (OSError, UnicodeDecodeError) as exc:
        raise NovelcraftError(f"cannot read checkpoint ({exc})", path=path, step="resume") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise NovelcraftError(f"not a valid checkpoint ({loc}: {err['msg']})", path=path, step="resume") from None


def find_states(run_dir: str | Path) -> list[Path]:
    """Checkpoint files of a run directory, in novel order."""
    return sorted((Path(run_dir) / "novels").glob(f"*/{STATE_FILE}"))

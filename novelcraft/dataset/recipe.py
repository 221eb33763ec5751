"""The ``kind: compile`` recipe: Book JSON files in, a ChatML training set out."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..bookfiles import DEFAULT_BOOK_FILES
from ..chat_format import DEFAULT_CHAT_TEMPLATE, DEFAULT_OPENING_SUMMARY, ChatTemplateName, SystemPromptConfig
from ..datafiles import ExportConfig
from ..executors.config import ExecutorConfig
from ..recipes import Budgets, Recipe, TokenizerConfig
from ..splits import SplitConfig

#: Book JSON files looked for in folders: the final Book of the LLM stages, else the latest numbered stage.


class CompileRecipe(Recipe):
    """Recipe of ``novelcraft compile``: Book JSON files in, a ChatML training set out."""

    kind: Literal["compile"] = "compile"
    books: list[str] = Field(
        ..., min_length=1, description="Book JSON files, folders (searched for book_files) or glob patterns"
    )
    book_files: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BOOK_FILES),
        min_length=1,
        description="in a folder, file patterns in priority order: per book directory, the first pattern that "
        "matches a Book JSON (meta + scenes) wins, and among its matches the last in name order (the latest stage)",
    )
    output_dir: str = Field("runs/datasets", description="the data set is written to OUTPUT_DIR/NAME")
    tokenizer: TokenizerConfig = TokenizerConfig()
    chat_template: ChatTemplateName = Field(
        DEFAULT_CHAT_TEMPLATE,
        description="how records are rendered (and counted): qwen3_instruct_2507 = plain ChatML, no think blocks; "
        "tokenizer_default = the template stored with the tokenizer. Use the train recipe's value",
    )
    budgets: Budgets = Budgets()
    system_prompt: SystemPromptConfig = SystemPromptConfig()
    opening_summary: str = Field(
        DEFAULT_OPENING_SUMMARY,
        min_length=1,
        description="running summary in the prompt of each sequence's first scene",
    )
    reference_scenes: Literal["drop", "keep"] = Field(
        "drop", description="scenes cut from reference sections (foreword, footnotes, ...)"
    )
    on_missing: Literal["fail", "drop"] = Field(
        "fail", description="a scene lacking its instruction, the previous running summary or the world context"
    )
    on_over_budget: Literal["drop", "fail"] = Field("drop", description="a record over budgets.record.max_tokens")
    flagged: Literal["keep", "drop"] = Field(
        "keep",
        description="records holding a flagged LLM item (a world context, summary or instruction that never passed "
        "its gates or budget, a segmentation fallback): kept with their flags in the meta sidecar, or dropped",
    )
    split: SplitConfig = SplitConfig()
    export: ExportConfig = ExportConfig()
    executor: ExecutorConfig = Field(
        ExecutorConfig(), description="where the books' records are counted, a book per unit (the data set is the same)"
    )

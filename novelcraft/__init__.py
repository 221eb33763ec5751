"""novelcraft: public-domain novels -> long-form fine-tuning data -> LoRA novel writers -> novels.

The pipeline is the package layout: :mod:`novelcraft.prep` (books -> Book JSON -> LLM stages),
:mod:`novelcraft.dataset` (Book JSON -> ChatML training set), :mod:`novelcraft.train` (Axolotl / MS-SWIFT),
:mod:`novelcraft.generate` (seeds -> novels) and :mod:`novelcraft.bench` (novels scored against human ones).
What the stages share lives below them: the prompt contract (:mod:`novelcraft.chat_format`), the running
summary task (:mod:`novelcraft.memory`), records (:mod:`novelcraft.models`), recipes
(:mod:`novelcraft.recipes`), runs (:mod:`novelcraft.runs`) and their stats (:mod:`novelcraft.stats`), where
units of work run (:mod:`novelcraft.executors`), token counting (:mod:`novelcraft.tokens`) and the LLM engines
(:mod:`novelcraft.llm`).

The names below are imported lazily, so ``import novelcraft`` loads no tokenizer, model or client::

    from novelcraft import load_recipe, run_prep
    result = run_prep(load_recipe("recipes/prep/default.yaml", ["name=my-run"], kind="prep"))
    print(result.summary())
"""

from __future__ import annotations

from ._lazy import lazy_exports

#: the package version (the same as pyproject.toml's).
__version__ = "0.1.0"

_EXPORTS = {
    # recipes and runs
    "load_recipe": "recipes",
    "Recipe": "recipes",
    "RunStats": "stats",
    "NovelcraftError": "errors",
    # token counting
    "load_token_counter": "tokens",
    "TokenCounter": "tokens",
    # the prompt contract and the memory task
    "progress_percent": "chat_format",
    "scene_messages": "chat_format",
    "render_user_turn": "chat_format",
    "render_chat": "chat_format",
    "load_chat_template": "chat_format",
    "make_summary_task": "memory",
    # records
    "Book": "models",
    "Chapter": "models",
    "ReferenceSection": "models",
    "Scene": "models",
    "WorldContext": "models",
    "RunningSummary": "models",
    "Instruction": "models",
    "TrainingRecord": "models",
    "Novel": "models",
    # prep
    "PrepRecipe": "prep",
    "PrepResult": "prep",
    "run_prep": "prep",
    "ingest_book": "prep",
    "clean_markdown": "prep",
    "clean_document": "prep",
    "inspect_book": "prep",
    "build_book": "prep",
    "prep_book": "prep",
    # dataset
    "CompileRecipe": "dataset",
    "CompileResult": "dataset",
    "run_compile": "dataset",
    "compile_books": "dataset",
    # engines
    "LLMConfig": "llm",
    "LLMRequest": "llm",
    "LLMResponse": "llm",
    "Engine": "llm",
    "make_engine": "llm",
    # training
    "TrainRecipe": "train",
    "run_train": "train",
    "check_train": "train",
    "merge_adapter": "train",
    # generation
    "GenerateRecipe": "generate",
    "GenerateResult": "generate",
    "generate_novels": "generate",
    "load_seed": "generate",
    # benchmarks of novels
    "BenchRecipe": "bench",
    "run_bench": "bench",
    "score_novel": "bench",
    "load_novel": "bench",
    # validation
    "validate_paths": "validate",
}

__all__ = ["__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)

"""novelcraft: public-domain novels -> long-form fine-tuning data -> LoRA novel writers -> novels.

The public API is imported lazily so that ``import novelcraft`` loads no tokenizer, model or client::

    from novelcraft import load_recipe, run_prep
    result = run_prep(load_recipe("recipes/prep/default.yaml", ["name=my-run"]))
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    # recipes
    "load_recipe": "recipes",
    "PrepRecipe": "recipes",
    "apply_overrides": "recipes",
    # tokens
    "load_token_counter": "tokens",
    "TokenCounter": "tokens",
    "HFTokenCounter": "tokens",
    "WordEstimateCounter": "tokens",
    # stages
    "ingest_book": "ingest",
    "clean_markdown": "clean",
    "build_book": "book",
    "prep_book": "book",
    "make_blocks": "blocks",
    "join_blocks": "blocks",
    "apply_boundaries": "blocks",
    "merge_scenes": "blocks",
    "merge_scenes_counted": "blocks",
    "split_long_paragraph": "blocks",
    "run_prep": "pipeline",
    "resolve_book_paths": "pipeline",
    # validation and schemas
    "validate_paths": "validate",
    "validate_file": "validate",
    "write_schemas": "schemas",
    "check_schemas": "schemas",
    # records
    "Book": "models",
    "BookMeta": "models",
    "Chapter": "models",
    "ReferenceSection": "models",
    "Block": "models",
    "Scene": "models",
    "WorldContext": "models",
    "RunningSummary": "models",
    "Instruction": "models",
    "TrainingRecord": "models",
    "SceneBoundaries": "models",
    "NovelcraftError": "errors",
    # LLM engine and stages 4-7
    "LLMConfig": "llm",
    "LLMRequest": "llm",
    "LLMResponse": "llm",
    "Engine": "llm",
    "make_engine": "llm",
    "run_llm_stages": "llmprep",
    "make_summary_task": "llmprep",
    "load_prompt": "prompts",
    # training set
    "CompileRecipe": "compile",
    "compile_books": "compile",
    "run_compile": "compile",
    "render_user_turn": "compile",
    "scene_messages": "compile",
    "render_chatml": "compile",
    "progress_percent": "compile",
    "dataset_stats": "compile",
    "load_compiled": "compile",
    # training
    "TrainRecipe": "train",
    "run_train": "train",
    "check_train": "train",
    "merge_adapter": "train",
    "make_tiny_qwen3_moe": "train",
    "render_tool_config": "train",
    # generation
    "generate_novels": "generate",
    "make_outline": "generate",
    "load_seed": "generate",
    "GenerateRecipe": "generate",
    "StorySeed": "generate",
    # benchmarks of novels
    "score_novel": "bench",
    "load_novel": "bench",
    "bench": "bench",
    "run_bench": "bench",
    "write_report": "bench",
    "load_human_baseline": "bench",
    "BenchRecipe": "bench",
}

__all__ = ["__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)

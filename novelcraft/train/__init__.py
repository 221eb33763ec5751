"""Training: ``kind: train`` recipes rendered for Axolotl or MS-SWIFT, run in the tool's own virtualenv.

Only the recipe schema is imported with this package; rendering, tool runs, merging and the tiny
test model load on first use (the tools live in separate venvs, torch is never imported here).
"""

from __future__ import annotations

from .._lazy import lazy_exports

from .recipe import TOOLS, TrainRecipe, tool_keys

__all__ = [
    "TOOLS",
    "TrainRecipe",
    "tool_keys",
    "render_tool_config",
    "prepare_run",
    "check_train",
    "run_train",
    "merge_adapter",
    "export_gguf",
    "make_tiny_qwen3_moe",
    "find_toolenv",
]

_LAZY = {
    "render_tool_config": "render",
    "prepare_run": "run",
    "check_train": "run",
    "run_train": "run",
    "TrainResult": "run",
    "CheckResult": "run",
    "merge_adapter": "merge",
    "export_gguf": "merge",
    "make_tiny_qwen3_moe": "tiny",
    "find_toolenv": "toolenv",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)

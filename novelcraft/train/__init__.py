"""Training: ``kind: train`` recipes rendered for Axolotl or MS-SWIFT, run in the tool's own virtualenv.

Only the recipe schema is imported with this package; rendering, the estimate, tool runs, merging and
the tiny test model load on first use (the tools live in separate venvs, torch is never imported here).
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .common import TOOLS, tool_keys
from .recipe import TrainRecipe

__all__ = [
    "TOOLS",
    "TrainRecipe",
    "check_train",
    "estimate_train",
    "export_gguf",
    "export_model",
    "ExportRecipe",
    "find_toolenv",
    "format_estimate",
    "make_tiny_qwen2",
    "make_tiny_qwen3_moe",
    "merge_adapter",
    "model_shape",
    "prepare_run",
    "render_tool_config",
    "run_train",
    "tool_keys",
]

_LAZY = {
    "render_tool_config": "render",
    "estimate_train": "estimate",
    "TrainEstimate": "estimate",
    "format_estimate": "report",
    "model_shape": "shape",
    "ModelShape": "shape",
    "prepare_run": "run",
    "check_train": "run",
    "run_train": "run",
    "TrainResult": "run",
    "CheckResult": "run",
    "merge_adapter": "merge",
    "export_gguf": "merge",
    "make_tiny_qwen3_moe": "tiny",
    "make_tiny_qwen2": "tiny",
    "export_model": "export",
    "ExportRecipe": "export",
    "find_toolenv": "toolenv",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)

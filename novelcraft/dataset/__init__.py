"""Stage 8, ``novelcraft compile``: Book JSON files -> a ChatML training set.

Every scene becomes one record ``{"messages": [system, user, assistant]}`` in the shape the prompt
contract (:mod:`novelcraft.chat_format`) defines: the system turn is the author persona, the user turn
the tagged ``<world_context>``, ``<running_summary>`` (``NOVEL PROGRESS: XX%`` first) and
``<scene_instruction>`` sections, the assistant turn the scene text. For scene *n* of *N* (narrative scenes
of a book, in order) the summary is the one written after scene *n-1* (scene 1: the recipe's opening
summary) and the progress is ``progress_percent(n, N)``. Reference scenes form their own sequence and are
dropped or kept by the recipe; their flag travels in the ``*.meta.jsonl`` sidecar, never in the messages.

Records are rendered with the recipe's chat template, counted exactly in one batch, and must fit
``budgets.record.max_tokens``. Layout of a compiled data set (``OUTPUT_DIR/NAME``)::

    train.jsonl               {"messages": [...]} per line (Axolotl / MS-SWIFT chat format)
    validation.jsonl          same, held-out split (absent when the split is empty)
    train.meta.jsonl          one RecordMeta per line, aligned with train.jsonl (book, scene, flags, tokens)
    validation.meta.jsonl
    hf_dataset/               datasets.DatasetDict saved with save_to_disk (export format "hf")
    README.md                 data card: books, records, token statistics, budget histogram, recipe
    stats.json                the run's stats record (the data card's numbers under details.dataset)
    manifest.json             fingerprint of the finished data set (a re-run with the same inputs skips)
    recipe.resolved.yaml      the recipe with every default filled in

Data files are deterministic: re-running a recipe on the same inputs writes byte-identical JSONL,
sidecars and data card (no timestamps inside them; timings live in ``stats.json`` only).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "CompileRecipe": "recipe",
    "SplitConfig": "recipe",
    "ExportConfig": "recipe",
    "CompileResult": "stats",
    "CompileStats": "stats",
    "CompiledRecord": "stats",
    "DatasetStats": "stats",
    "TokenSummary": "stats",
    "dataset_stats": "stats",
    "compile_books": "records",
    "split_records": "records",
    "render_data_card": "card",
    "resolve_book_files": "run",
    "load_book": "run",
    "load_compiled": "files",
    "read_jsonl": "files",
    "write_compiled": "files",
    "export_hf_dataset": "files",
    "run_compile": "run",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)

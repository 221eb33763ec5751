"""Data prep: books in, Book JSON out (stages 1-3), then the LLM stages 4-7.

* :mod:`~novelcraft.prep.ingest` — EPUB / Gutenberg text / Markdown -> paragraphs with their structural
  signals (:mod:`~novelcraft.prep.structure.document`) + source metadata;
* :mod:`~novelcraft.prep.clean` — chapters, containers and reference material, by the method of
  :mod:`~novelcraft.prep.structure` with the recipe's ``clean`` settings; :mod:`~novelcraft.prep.inspect` —
  the structure report of a book without a run;
* :mod:`~novelcraft.prep.blocks` and :mod:`~novelcraft.prep.book` — token-budgeted blocks, scenes, Book JSON;
* :mod:`~novelcraft.prep.llm_tasks` and :mod:`~novelcraft.prep.llm_run` — world context, semantic scenes,
  running summaries and instructions, batched over books;
* :mod:`~novelcraft.prep.stages` — stages 1-3 of one book; :mod:`~novelcraft.prep.dispatch` — books as units
  of work on an executor, with completion markers;
* :mod:`~novelcraft.prep.run` — :func:`run_prep` over a run directory (resume, skip, stats).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "PrepRecipe": "recipe",
    "PrepResult": "run",
    "run_prep": "run",
    "prep_one": "stages",
    "resolve_book_paths": "run",
    "ingest_book": "ingest",
    "RawBook": "ingest",
    "SourceMeta": "ingest",
    "clean_markdown": "clean",
    "clean_document": "clean",
    "render_report": "clean",
    "CleanBook": "clean",
    "inspect_book": "inspect",
    "Inspection": "inspect",
    "build_book": "book",
    "prep_book": "book",
    "make_blocks": "blocks",
    "join_blocks": "blocks",
    "apply_boundaries": "blocks",
    "merge_scenes": "blocks",
    "merge_scenes_counted": "blocks",
    "run_llm_stages": "llm_run",
    "LLMStageResult": "llm_run",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)

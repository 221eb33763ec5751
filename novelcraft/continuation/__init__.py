"""Reasoning story continuation (the CRA method): Book JSON chapters -> (context, continuation) chunks ->
the author's reasoning reconstructed by a teacher engine -> training records; and the writer's assistant
that continues a story with a model trained on them.

* :mod:`~novelcraft.continuation.recipe` — the ``kind: continuation`` recipe;
* :mod:`~novelcraft.continuation.chunk` — sentence-aligned chunks from chapters only (pysbd), the record budget;
* :mod:`~novelcraft.continuation.teacher` — the teacher's reasoning and guidance tasks with their quality gates;
* :mod:`~novelcraft.continuation.records` — CRA or chat records, exact counts, split, statistics;
* :mod:`~novelcraft.continuation.files` / :mod:`~novelcraft.continuation.run` — the data set on disk;
* :mod:`~novelcraft.continuation.assistant` — ``continue_story`` and the ``kind: assistant`` recipe
  (``novelcraft continue``).

The prompt texts and the tag parsing live below the stages, in :mod:`novelcraft.reasoning_format`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "ContinuationRecipe": "recipe",
    "Chunk": "chunk",
    "chunk_book": "chunk",
    "select_chunks": "chunk",
    "build_records": "records",
    "ContinuationMeta": "records",
    "run_continuation": "run",
    "ContinuationResult": "run",
    "AssistantRecipe": "assistant",
    "Continuation": "assistant",
    "continue_story": "assistant",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)

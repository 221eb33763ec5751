"""Validation of data-set files: the engine behind ``novelcraft validate PATH...``.

* :mod:`~novelcraft.validate.kinds` — what a file holds (every file novelcraft writes is a kind with a schema);
* :mod:`~novelcraft.validate.training` — ChatML training JSONL and its metadata sidecars;
* :mod:`~novelcraft.validate.book` — Book JSON, scenes and single LLM answers, with token budgets;
* :mod:`~novelcraft.validate.files` — :func:`validate_file`, :func:`validate_paths`;
* :mod:`~novelcraft.validate.issues` — :class:`ValidationIssue`, :func:`summarize`, :func:`has_errors`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "ValidationIssue": "issues",
    "has_errors": "issues",
    "summarize": "issues",
    "detect_kind": "kinds",
    "FILE_KINDS": "kinds",
    "validate_file": "files",
    "validate_paths": "files",
    "iter_data_files": "files",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)

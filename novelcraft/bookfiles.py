"""Book JSON inputs of the data-set builders (``dataset`` and ``continuation``): finding the Book JSON files
a recipe names (files, folders of prep runs, glob patterns) and reading one, with errors naming the file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from .errors import NovelcraftError
from .models import Book
from .runs import resolve_inputs

#: in a folder, the Book JSON file patterns tried in order: a run's ``book.json``, else its latest stage file.
DEFAULT_BOOK_FILES = ("book.json", "[0-9][0-9]_*.json")


def resolve_book_files(
    patterns: Sequence[str], book_files: Sequence[str] = DEFAULT_BOOK_FILES, base: Path | None = None
) -> list[Path]:
    """Book JSON files named by ``patterns``: files, glob patterns, and folders. In a folder, each
    directory holding matches of ``book_files`` gives one book: the first of those patterns (in order)
    that matches a Book JSON, and of its matches the last in name order (the latest stage).
    Unique, in order."""

    def from_dir(d: Path) -> list[Path]:
        by_parent: dict[Path, list[list[Path]]] = {}
        for i, pattern in enumerate(book_files):
            for f in sorted(d.rglob(pattern)):
                hidden = any(part.startswith(".") for part in f.relative_to(d).parts)
                if f.is_file() and not f.name.endswith(".meta.json") and not hidden:
                    by_parent.setdefault(f.parent, [[] for _ in book_files])[i].append(f)
        picked = []
        for parent in sorted(by_parent):
            candidates = [f for group in by_parent[parent] for f in reversed(group)]
            book = next((f for f in candidates if _looks_like_book(f)), None)
            if book is not None:
                picked.append(book)
        return picked

    return resolve_inputs(patterns, from_dir, what=f"Book JSON files ({', '.join(book_files)})", base=base)


def _looks_like_book(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "meta" in data and "scenes" in data


def load_book(path: str | Path) -> Book:
    """Read a Book JSON file; errors name the file and the first invalid fields."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NovelcraftError(f"cannot read ({exc.strerror or exc})", path=path, step="load") from None
    try:
        return Book.model_validate_json(text)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        parts = [f"{'.'.join(str(x) for x in e['loc']) or '(file)'}: {e['msg']}" for e in errs[:3]]
        more = f" (and {len(errs) - 3} more)" if len(errs) > 3 else ""
        raise NovelcraftError(
            "not a valid Book JSON: " + "; ".join(parts) + more + " (novelcraft validate FILE lists every problem)",
            path=path,
            step="load",
        ) from None

"""Errors that carry the file and the step that failed, so the CLI can print one clear line."""

from __future__ import annotations

from pathlib import Path


class NovelcraftError(Exception):
    """A user-facing failure: bad input, bad recipe, missing tool.

    ``path`` names the file involved and ``step`` the pipeline step; ``str(err)`` is a single line
    ``PATH: STEP: CAUSE`` suitable for a terminal and for logs.
    """

    def __init__(self, cause: str, *, path: str | Path | None = None, step: str | None = None) -> None:
        self.cause = cause
        self.path = str(path) if path is not None else None
        self.step = step
        super().__init__(self.format())

    def format(self) -> str:
        """The one-line message ``PATH: STEP: CAUSE`` (the parts that are set)."""
        parts = [p for p in (self.path, self.step) if p]
        parts.append(self.cause)
        return ": ".join(parts)


#: how this checkout installs novelcraft and its extras (a virtualenv in ``.venv``).
SETUP_SCRIPT = "bash scripts/setup.sh"


def setup_hint(extras: str) -> str:
    """The set-up command that installs ``extras`` (see pyproject's optional dependencies), for error messages:
    ``setup_hint("dev,bench")`` -> ``bash scripts/setup.sh dev,bench``."""
    return f"{SETUP_SCRIPT} {extras}"


class RecipeError(NovelcraftError):
    """The recipe file, an override or a cross-field budget check is invalid."""


class IngestError(NovelcraftError):
    """A source book cannot be read or converted (corrupt, DRM, empty, undecodable)."""


class StructureError(NovelcraftError):
    """A cleaned book has no detectable chapters or is otherwise unusable."""

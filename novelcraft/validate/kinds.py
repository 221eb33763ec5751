"""What a file holds: every JSON, JSONL and YAML file novelcraft writes (or reads) is a kind with a schema.

Detection looks at the file name first (``04_world_context.json``, ``state.json``, ``llm/<stage>.jsonl``...)
and confirms it by the content's keys, then falls back to the content alone (a Book JSON anywhere, a
training JSONL, a single world context...). Every kind names its schema in :data:`novelcraft.schemas.SCHEMA_MODELS`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..chat_format import PROGRESS_PREFIX, SECTION_INSTRUCTION

KIND_TRAINING = "training"
KIND_BOOK = "book"
KIND_RECIPE = "recipe"
KIND_RECORD_META = "record_meta"
KIND_UNKNOWN = "unknown"

#: suffix of the compiled data set's metadata sidecars (``train.meta.jsonl``).
META_SUFFIX = ".meta.jsonl"
#: other names accepted for a user-turn section (the tag another tool writes -> our tag).
SECTION_ALIASES = {"instruction": SECTION_INSTRUCTION}
PROGRESS_LINE = rf"^{re.escape(PROGRESS_PREFIX)}(\d{{1,3}})%\s*$"

#: single-object JSON files recognized by their keys alone, in detection priority order (schema stems).
OBJECT_KINDS = ("world_context", "running_summary", "instruction", "scene")

#: suffixes picked up when a directory is given.
DATA_SUFFIXES = (".json", ".jsonl", ".yaml", ".yml")
#: directory names never descended into.
SKIP_DIRS = frozenset({"__pycache__", "node_modules", ".git", ".venv", "venv", "hf_dataset"})

CHAT_ROLES = ("system", "user", "assistant")


@dataclasses.dataclass(frozen=True)
class FileKind:
    """A kind of file recognized by name: ``names`` are file-name patterns (``parent/name`` patterns match
    the last two path parts), ``keys`` top-level keys its content must have, ``jsonl`` one record a line."""

    schema: str
    names: tuple[str, ...]
    keys: tuple[str, ...] = ()
    jsonl: bool = False


#: kinds named by their files (checked in order, before content-based detection).
FILE_KINDS: tuple[FileKind, ...] = (
    FileKind("source_meta", ("01_ingest.meta.json",), ("source_file", "source_sha256")),
    FileKind("ingest_document", ("01_ingest.json",), ("format", "paras")),
    FileKind("clean_book", ("02_clean.json",), ("chapters", "reference")),
    FileKind("world_context_file", ("04_world_context.json",), ("world_context", "rendered")),
    FileKind("scenes_file", ("05_scenes.json",), ("atomic_starts", "scenes")),
    FileKind("summaries_file", ("06_summaries.json",)),
    FileKind("instructions_file", ("07_instructions.json",)),
    FileKind("llm_flags", ("llm_flags.json",)),
    FileKind("manifest", ("manifest.json",), ("entries",)),
    FileKind("run_stats", ("stats.json",), ("command", "run_dir")),
    FileKind("novel_state", ("state.json",), ("novel_id", "seed", "settings")),
    FileKind("outline", ("outline.json",), ("title", "acts", "scenes")),
    FileKind("novel", ("novel.json",), ("title", "scenes")),
    FileKind("trace", ("trace.json",), ("novel_id", "scenes")),
    FileKind("bench_report", ("results.json",), ("novels",)),
    FileKind("human_baseline", ("human_baseline.json",)),
    FileKind("store_line", ("llm/*.jsonl",), jsonl=True),
    FileKind("debug_line", ("llm_debug.jsonl",), jsonl=True),
)


def schema_model(stem: str) -> type[BaseModel]:
    """The model of the schema ``stem`` (see :data:`novelcraft.schemas.SCHEMA_MODELS`)."""
    from ..schemas import schema_model as _model

    return _model(stem)


def _name_matches(path: Path, pattern: str) -> bool:
    if "/" in pattern:
        tail = "/".join(path.parts[-2:])
        return fnmatch.fnmatch(tail, pattern)
    return fnmatch.fnmatch(path.name, pattern)


def file_kind(path: str | Path, data: Any = None) -> FileKind | None:
    """The named kind of ``path`` whose keys ``data`` (the parsed content; None for JSONL) has."""
    p = Path(path)
    for kind in FILE_KINDS:
        if any(_name_matches(p, pat) for pat in kind.names):
            if kind.jsonl or not kind.keys or (isinstance(data, dict) and all(k in data for k in kind.keys)):
                return kind
    return None


def _matching_object_kind(data: dict[str, Any]) -> str | None:
    keys = set(data)
    best: tuple[float, str] | None = None
    for kind in OBJECT_KINDS:
        model = schema_model(kind)
        fields = set(model.model_fields)
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        if required <= keys and keys <= fields:
            return kind
        # a broken object of this kind: most of its required keys and few foreign ones
        hits = len(keys & required) / len(required)
        foreign = len(keys - fields) / len(keys)
        score = hits - foreign
        if hits >= 0.5 and score > 0 and (best is None or score > best[0]):
            best = (score, kind)
    return best[1] if best else None


def detect_kind(path: str | Path, data: Any) -> str:
    """What a file holds: ``"training"``, ``"book"``, ``"recipe"``, ``"record_meta"``, a schema stem of
    :data:`FILE_KINDS` or :data:`OBJECT_KINDS`, or ``"unknown"``.

    ``data`` is the parsed content (ignored for ``.jsonl`` files).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if p.name.lower().endswith(META_SUFFIX):
        return KIND_RECORD_META
    named = file_kind(p, data)
    if named is not None:
        return named.schema
    if suffix == ".jsonl":
        return KIND_TRAINING
    if suffix in (".yaml", ".yml"):
        if isinstance(data, dict) and "kind" in data:
            return KIND_RECIPE
        if isinstance(data, dict) and "premise" in data and "title" in data:
            return "story_seed"
        if isinstance(data, dict) and {"title", "acts", "scenes"} <= set(data):
            return "outline"
        return KIND_UNKNOWN
    if not isinstance(data, dict) or not data:
        return KIND_UNKNOWN
    if "meta" in data and "scenes" in data:
        return KIND_BOOK
    if "messages" in data:
        return KIND_TRAINING
    return _matching_object_kind(data) or KIND_UNKNOWN

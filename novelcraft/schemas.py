"""JSON Schemas of the persisted records, generated from the pydantic models into ``schemas/``.

The checked-in ``schemas/*.schema.json`` files let users validate data sets without importing
Python. They are generated, never edited by hand::

    python -m novelcraft.schemas            # (re)write schemas/
    python -m novelcraft.schemas --check    # exit 1 when a file is missing or out of date
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from .io import atomic_write_text

log = logging.getLogger(__name__)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIR = "schemas"
SUFFIX = ".schema.json"

#: file stem -> "module:Class" of every record novelcraft reads or writes (imported on use); the order is
#: the order files are written and reported in. :mod:`novelcraft.validate` detects files by these kinds.
SCHEMA_MODELS: dict[str, str] = {
    # Book JSON and its parts
    "book": "novelcraft.models:Book",
    "book_meta": "novelcraft.models:BookMeta",
    "chapter": "novelcraft.models:Chapter",
    "reference_section": "novelcraft.models:ReferenceSection",
    "block": "novelcraft.models:Block",
    "scene": "novelcraft.models:Scene",
    # LLM answers
    "world_context": "novelcraft.models:WorldContext",
    "running_summary": "novelcraft.models:RunningSummary",
    "instruction": "novelcraft.models:Instruction",
    "scene_boundaries": "novelcraft.models:SceneBoundaries",
    # training data
    "training_record": "novelcraft.models:TrainingRecord",
    "record_meta": "novelcraft.models:RecordMeta",
    "continuation_record": "novelcraft.reasoning_format:ContinuationRecord",
    "continuation_meta": "novelcraft.continuation.records:ContinuationMeta",
    "continuation_chunk": "novelcraft.continuation.chunk:Chunk",
    # recipes
    "recipe_prep": "novelcraft.prep.recipe:PrepRecipe",
    "recipe_compile": "novelcraft.dataset.recipe:CompileRecipe",
    "recipe_train": "novelcraft.train.recipe:TrainRecipe",
    "recipe_bench": "novelcraft.bench.recipe:BenchRecipe",
    "recipe_generate": "novelcraft.generate.recipe:GenerateRecipe",
    "recipe_continuation": "novelcraft.continuation.recipe:ContinuationRecipe",
    "recipe_assistant": "novelcraft.continuation.assistant:AssistantRecipe",
    "recipe_export": "novelcraft.train.export:ExportRecipe",
    "recipe_bench_continuation": "novelcraft.bench.continuation:ContinuationBenchRecipe",
    # generation
    "story_seed": "novelcraft.generate.seed:StorySeed",
    "outline": "novelcraft.generate.outline:Outline",
    "novel_state": "novelcraft.generate.state:NovelState",
    "novel": "novelcraft.models:Novel",
    "trace": "novelcraft.generate.output:Trace",
    # prep stage files
    "source_meta": "novelcraft.prep.ingest:SourceMeta",
    "ingest_document": "novelcraft.prep.structure.document:Document",
    "clean_book": "novelcraft.prep.clean:CleanBook",
    "world_context_file": "novelcraft.prep.stage_files:WorldContextFile",
    "scenes_file": "novelcraft.prep.stage_files:ScenesFile",
    "summaries_file": "novelcraft.prep.stage_files:SummariesFile",
    "instructions_file": "novelcraft.prep.stage_files:InstructionsFile",
    "llm_flags": "novelcraft.prep.stage_files:FlagsFile",
    # run bookkeeping
    "run_stats": "novelcraft.stats:RunStats",
    "manifest": "novelcraft.runs:ManifestFile",
    "store_line": "novelcraft.runs:StoreLine",
    "debug_line": "novelcraft.llm.debug:DebugLine",
    # benchmarks
    "bench_report": "novelcraft.bench.report:BenchReport",
    "human_baseline": "novelcraft.bench.baseline:HumanBaseline",
}


def schema_model(stem: str) -> type[BaseModel]:
    """The model behind schema ``stem`` (imported on first use)."""
    module, _, name = SCHEMA_MODELS[stem].partition(":")
    return getattr(importlib.import_module(module), name)


def schema_id(stem: str) -> str:
    """The ``$id`` of a schema file, e.g. ``novelcraft/book.schema.json``."""
    return f"novelcraft/{stem}{SUFFIX}"


def generate_schema(stem: str) -> dict:
    """JSON Schema (draft 2020-12) of ``SCHEMA_MODELS[stem]`` with ``$schema`` and ``$id`` first."""
    body = schema_model(stem).model_json_schema()
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id(stem), **body}


def generate_schemas() -> dict[str, dict]:
    """All schemas, keyed by file stem, in :data:`SCHEMA_MODELS` order. Deterministic."""
    return {stem: generate_schema(stem) for stem in SCHEMA_MODELS}


def render_schema(schema: dict) -> str:
    """The exact text of a schema file: JSON, indent 2, key order kept, trailing newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _expected_files() -> dict[str, str]:
    return {f"{stem}{SUFFIX}": render_schema(schema) for stem, schema in generate_schemas().items()}


def write_schemas(directory: str | Path = DEFAULT_DIR) -> list[Path]:
    """Write every ``<stem>.schema.json`` into ``directory`` (atomically); return the paths.

    Files whose content is already up to date are left untouched (but still returned).
    """
    directory = Path(directory)
    written: list[Path] = []
    for name, text in _expected_files().items():
        path = directory / name
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            atomic_write_text(path, text)
            log.info("wrote %s", path)
        written.append(path)
    return written


def check_schemas(directory: str | Path = DEFAULT_DIR) -> list[str]:
    """Names of the schema files in ``directory`` that are missing or differ from the models (drift).

    An empty list means the checked-in schemas match :func:`generate_schemas`.
    """
    directory = Path(directory)
    drift: list[str] = []
    for name, text in _expected_files().items():
        try:
            current = (directory / name).read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            drift.append(name)
    return drift


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m novelcraft.schemas [--check] [DIR]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m novelcraft.schemas",
        description="Generate (or check) the JSON Schemas of novelcraft's records.",
    )
    parser.add_argument("directory", nargs="?", default=DEFAULT_DIR, help=f"output folder (default: {DEFAULT_DIR})")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if any file is missing or stale")
    args = parser.parse_args(argv)
    directory = Path(args.directory)
    if args.check:
        drift = check_schemas(directory)
        if drift:
            details = ", ".join(f"{name} ({'stale' if (directory / name).exists() else 'missing'})" for name in drift)
            print(
                f"{directory}: JSON Schemas out of date with novelcraft.models: {details}\n"
                f"regenerate them with: python -m novelcraft.schemas {directory}",
                file=sys.stderr,
            )
            return 1
        print(f"{directory}: {len(SCHEMA_MODELS)} JSON Schemas up to date")
        return 0
    paths = write_schemas(directory)
    print(f"{directory}: wrote {len(paths)} JSON Schemas")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Files of a data set: the JSONL splits and sidecars, the HF export, reading back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..datafiles import save_hf_dataset, write_split_files
from ..errors import NovelcraftError
from ..io import atomic_write_text
from ..models import RecordMeta, TrainingRecord
from ..stats import read_stats
from .card import DATA_CARD, HF_DIR, render_data_card
from .recipe import CompileRecipe
from .stats import SPLITS, CompiledRecord, CompileResult, CompileStats


def export_hf_dataset(result: CompileResult, path: str | Path) -> Path:
    """Save the splits as a ``datasets.DatasetDict`` with ``save_to_disk`` (atomically: written to a
    temporary folder, then moved into place). Columns: ``messages`` and the :class:`RecordMeta` fields."""
    rows = {
        split: [
            {"messages": [m.model_dump() for m in r.record.messages], **r.meta.model_dump()}
            for r in getattr(result, split)
        ]
        for split in SPLITS
    }
    return save_hf_dataset(rows, RecordMeta, Path(path))


def write_compiled(result: CompileResult, recipe: CompileRecipe, run_dir: str | Path) -> list[Path]:
    """Write the data files of ``result`` under ``run_dir`` (atomically); returns the paths written."""
    run_dir = Path(run_dir)
    splits = {s: ([r.record for r in getattr(result, s)], [r.meta for r in getattr(result, s)]) for s in SPLITS}
    written = write_split_files(run_dir, splits, jsonl="jsonl" in recipe.export.formats)
    if "hf" in recipe.export.formats:
        written.append(export_hf_dataset(result, run_dir / HF_DIR))
    if recipe.export.data_card:
        written.append(atomic_write_text(run_dir / DATA_CARD, render_data_card(result.stats, recipe)))
    return written


def load_compiled(run_dir: str | Path) -> CompileResult:
    """Read a compiled data set back (records from ``*.meta.jsonl`` + ``*.jsonl``, stats from stats.json);
    the result is marked ``skipped`` (nothing was compiled). Needs the ``jsonl`` export format."""
    run_dir = Path(run_dir)
    run = read_stats(run_dir)
    try:
        stats = CompileStats.model_validate(run.details["dataset"])
    except (KeyError, ValidationError) as exc:
        raise NovelcraftError(
            f"stats.json holds no data-set statistics ({type(exc).__name__})", path=run_dir, step="load"
        ) from None
    splits: dict[str, list[CompiledRecord]] = {}
    for split in SPLITS:
        meta_path = run_dir / f"{split}.meta.jsonl"
        if not meta_path.exists():
            splits[split] = []
            continue
        metas = [RecordMeta.model_validate(r) for r in read_jsonl(meta_path)]
        rows = read_jsonl(run_dir / f"{split}.jsonl")
        if len(rows) != len(metas):
            raise NovelcraftError(f"{len(rows)} records but {len(metas)} metadata lines", path=meta_path, step="load")
        splits[split] = [CompiledRecord(record=TrainingRecord.model_validate(r), meta=m) for r, m in zip(rows, metas)]
    return CompileResult(
        train=splits["train"],
        validation=splits["validation"],
        stats=stats,
        run_dir=str(run_dir),
        skipped=True,
        files=list(run.details.get("files", [])),
    )


def expected_files(recipe: CompileRecipe, stats: CompileStats) -> list[str]:
    """The files of a finished data set (relative to its folder), for the manifest."""
    files = []
    for split in SPLITS:
        if stats.records[split]:
            files.append(f"{split}.meta.jsonl")
            if "jsonl" in recipe.export.formats:
                files.append(f"{split}.jsonl")
    if "hf" in recipe.export.formats:
        files.append(HF_DIR)
    if recipe.export.data_card:
        files.append(DATA_CARD)
    return files


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file (blank lines skipped); errors name the file and line."""
    path = Path(path)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NovelcraftError(f"cannot read ({exc.strerror or exc})", path=path, step="read") from None
    for num, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise NovelcraftError(f"line {num}: invalid JSON ({exc.msg})", path=path, step="read") from None
    return rows

"""Writing a data set's split files, shared by the data-set builders (``dataset`` and ``continuation``).

Each split is ``SPLIT.jsonl`` (the records) beside ``SPLIT.meta.jsonl`` (one sidecar line per record), and
optionally a Hugging Face ``DatasetDict`` folder with the records' ``messages`` and the sidecar's columns.
Every file is written atomically; a split left empty loses the files an earlier run wrote for it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from .errors import NovelcraftError, setup_hint
from .io import atomic_write_jsonl, create_temp_dir
from .strict import Strict

ExportFormat = Literal["jsonl", "hf"]


def _default_formats() -> list[ExportFormat]:
    return ["jsonl"]


class ExportConfig(Strict):
    """Which data-set formats are written, and whether the data card is."""

    formats: list[ExportFormat] = Field(
        default_factory=_default_formats,
        min_length=1,
        description="jsonl: train.jsonl/validation.jsonl; hf: a datasets.DatasetDict saved with save_to_disk "
        "(needs the 'datasets' package)",
    )
    data_card: bool = Field(True, description="write README.md describing the data set")

    @model_validator(mode="after")
    def _unique(self) -> ExportConfig:
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"export.formats has duplicates: {self.formats}")
        return self


def write_split_files(
    run_dir: Path, splits: Mapping[str, tuple[Sequence[Any], Sequence[BaseModel]]], *, jsonl: bool
) -> list[Path]:
    """Write ``{split: (records, sidecar rows)}`` under ``run_dir``: the records only with ``jsonl``, the
    sidecar always. Returns the paths written."""
    written = []
    for split, (records, metas) in splits.items():
        data, meta = run_dir / f"{split}.jsonl", run_dir / f"{split}.meta.jsonl"
        if not records:
            # a stale split from an earlier run must not survive next to the new one
            data.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            continue
        if jsonl:
            written.append(atomic_write_jsonl(data, records))
        written.append(atomic_write_jsonl(meta, metas))
    return written


def save_hf_dataset(rows: Mapping[str, Sequence[Mapping[str, Any]]], meta_model: type[BaseModel], path: Path) -> Path:
    """Save ``{split: rows}`` as a ``datasets.DatasetDict`` with ``save_to_disk``, atomically (a temporary
    folder moved into place). Columns: ``messages`` and the fields of ``meta_model``."""
    try:
        import datasets
    except ImportError:
        raise NovelcraftError(
            f"export format 'hf' needs the 'datasets' package ({setup_hint('dev,hf')}), "
            "or remove hf from export.formats",
            step="export",
        ) from None
    message = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    columns: dict[str, Any] = {"messages": [message]}
    for name, field in meta_model.model_fields.items():
        ann = field.annotation
        if ann is int:
            columns[name] = datasets.Value("int32")
        elif ann is bool:
            columns[name] = datasets.Value("bool")
        elif ann == list[str]:
            columns[name] = [datasets.Value("string")]
        else:
            columns[name] = datasets.Value("string")
    features = datasets.Features(columns)
    dd = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list([{k: row[k] for k in columns} for row in split_rows], features=features)
            for split, split_rows in rows.items()
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = create_temp_dir(path.parent, prefix=f".{path.name}.")
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # our own progress reporting is the caller's; keep stderr clean
    try:
        dd.save_to_disk(str(tmp))
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        tmp.rename(path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bars:
            datasets.enable_progress_bars()
    return path

"""Atomic file output: a reader never sees a half-written stage file.

Files and folders are created with the modes a plain ``open()`` / ``mkdir()`` would give them
(``0666`` / ``0777`` less the umask): :mod:`tempfile` would make every output private (``0600``).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

_ATTEMPTS = 100


def _unique_names(directory: Path, prefix: str, suffix: str) -> Iterable[Path]:
    for _ in range(_ATTEMPTS):
        yield directory / f"{prefix}{secrets.token_hex(6)}{suffix}"


def create_temp_file(directory: str | Path, prefix: str, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new, uniquely named file in ``directory``, open for writing: ``(fd, path)``.

    Like :func:`tempfile.mkstemp` (exclusive creation), but with mode ``0666`` less the umask, the mode
    ``open(path, "w")`` would give the file, since it becomes an output once renamed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for name in _unique_names(Path(directory), prefix, suffix):
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name {prefix}*{suffix} in {directory}")


def create_temp_dir(directory: str | Path, prefix: str) -> Path:
    """A new, uniquely named folder in ``directory`` with mode ``0777`` less the umask (as ``mkdir``).

    :func:`tempfile.mkdtemp` would make it ``0700``, and so the output it becomes once renamed.
    """
    for name in _unique_names(Path(directory), prefix, ""):
        try:
            os.mkdir(name, 0o777)
            return name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary folder name {prefix}* in {directory}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    The file gets mode ``0666`` less the umask, as a plain ``open()`` would create it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp_file(path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def dumps_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys off: field order is the schema's order)."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` (a model or plain data) as :func:`dumps_json` text, atomically."""
    return atomic_write_text(path, dumps_json(obj))


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    """Write one compact JSON document per row (models are dumped in JSON mode), atomically."""
    lines = []
    for row in rows:
        if isinstance(row, BaseModel):
            row = row.model_dump(mode="json")
        lines.append(json.dumps(row, ensure_ascii=False))
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

"""One way to run a stage over a run directory, for every command (prep, compile, generate, bench, train).

* :func:`resolve_inputs` — files, folders and glob patterns named by a recipe, with one set of rules;
* :class:`Manifest` — fingerprints of finished outputs: an entry is *done* when its fingerprint (a content
  hash of inputs, settings and novelcraft version) matches and its files are in place, so a re-run skips it
  and ``--force`` redoes it; written atomically after the files it names;
* :class:`ResultStore` — an append-only, content-keyed store of finished items (LLM answers), flushed as
  each round ends, so a killed run resumes without repeating or duplicating work;
* the stats record every command writes beside its outputs is :mod:`novelcraft.stats`.

File writes go through :mod:`novelcraft.io` (atomic: temporary file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from . import __version__
from .errors import NovelcraftError
from .io import atomic_write_json, sha256_text
from .strict import Record

# --------------------------------------------------------------------------- inputs


def resolve_inputs(
    patterns: Sequence[str | Path],
    in_folder: Callable[[Path], list[Path]],
    *,
    what: str,
    base: Path | None = None,
    step: str = "inputs",
) -> list[Path]:
    """Files named by ``patterns``, unique, in order.

    Each pattern is a file, a folder (``in_folder(folder)`` lists what it holds) or a glob pattern
    (``*``, ``?``, ``[``; ``**`` recursive; matching folders are listed with ``in_folder``). ``~`` is
    expanded and relative paths are taken from ``base`` (default: the working directory). A path that
    does not exist, or a pattern that matches nothing, is one error naming the pattern.
    """
    base = base or Path.cwd()
    out: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        p = Path(text).expanduser()
        p = p if p.is_absolute() else base / p
        if any(ch in text for ch in "*?["):
            matches: list[Path] = []
            for hit in sorted(glob.glob(str(p), recursive=True)):
                mp = Path(hit)
                matches += in_folder(mp) if mp.is_dir() else [mp]
        elif p.is_dir():
            matches = in_folder(p)
        elif p.is_file():
            matches = [p]
        else:
            raise NovelcraftError("no such file or directory", path=text, step=step)
        if not matches:
            raise NovelcraftError(f"no {what} here", path=text, step=step)
        for m in matches:
            if m not in out:
                out.append(m)
    return out


def files_with_suffix(suffixes: Iterable[str]) -> Callable[[Path], list[Path]]:
    """An ``in_folder`` for :func:`resolve_inputs`: the folder's files with one of ``suffixes`` (sorted)."""
    wanted = tuple(s.lower() for s in suffixes)
    return lambda folder: sorted(x for x in folder.iterdir() if x.is_file() and x.suffix.lower() in wanted)


# --------------------------------------------------------------------------- manifest


def fingerprint(*parts: Any) -> str:
    """Content hash of JSON-able ``parts`` (with the novelcraft version: new code redoes old work)."""
    return sha256_text(json.dumps([__version__, *parts], sort_keys=True, default=str, ensure_ascii=False))


class ManifestEntry(Record):
    """One finished output: its fingerprint, files and time, and what the fingerprint hashes."""

    fingerprint: str
    files: list[str] = Field(default_factory=list, description="outputs, relative to the manifest's folder")
    seconds: float = 0.0
    settings: dict[str, Any] | None = Field(None, description="what the fingerprint hashes, for readable diffs")


class ManifestFile(Record):
    """``manifest.json``: what :class:`Manifest` writes."""

    novelcraft_version: str
    entries: dict[str, ManifestEntry] = Field(default_factory=dict)


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (a file or folder that exists) for the block: the writers
    of one run directory in several processes (an executor's workers) take turns. Where the file system
    offers no locks it does nothing, which is right for the one process that runs alone."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # pragma: no cover - a file system without flock
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Manifest:
    """``manifest.json`` of a folder: which outputs are finished, and from what.

    Outputs are written first, the entry after them, so a killed run never leaves an entry for a file
    that is missing or half-written. A change is made under a lock on the folder and merged with the
    entries on disk, so several processes may record entries of one manifest.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, ManifestEntry] = self._read()

    def _read(self) -> dict[str, ManifestEntry]:
        entries: dict[str, ManifestEntry] = {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}
        for name, entry in (raw.get("entries", {}) if isinstance(raw, dict) else {}).items():
            try:
                entries[name] = ManifestEntry.model_validate(entry)
            except ValueError:
                continue  # an unreadable entry is redone, never trusted
        return entries

    def done(self, name: str, fp: str) -> bool:
        """The entry is finished with this fingerprint and all its files exist."""
        entry = self.entries.get(name)
        return bool(entry and entry.fingerprint == fp and all((self.path.parent / f).exists() for f in entry.files))

    def get(self, name: str) -> ManifestEntry | None:
        """The entry ``name``, if recorded."""
        return self.entries.get(name)

    def record(
        self,
        name: str,
        fp: str,
        files: Iterable[str | Path],
        seconds: float = 0.0,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Mark ``name`` finished from fingerprint ``fp``; ``files`` (paths, absolute or relative to the working
        directory) are its outputs, stored relative to the manifest's folder."""
        base = self.path.parent.resolve()
        rel = [os.path.relpath(Path(f).resolve(), base) for f in files]
        entry = ManifestEntry(fingerprint=fp, files=rel, seconds=round(seconds, 4), settings=settings)
        self._change(lambda entries: entries.__setitem__(name, entry))

    def forget(self, name: str) -> None:
        """Remove the entry ``name`` (its outputs are about to be replaced)."""
        if name in self.entries or name in self._read():
            self._change(lambda entries: entries.pop(name, None))

    def _change(self, edit: Callable[[dict[str, ManifestEntry]], object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path.parent):
            self.entries = self._read()  # with what other processes recorded meanwhile
            edit(self.entries)
            self.save()

    def save(self) -> None:
        """Write the manifest file, atomically."""
        atomic_write_json(
            self.path,
            ManifestFile(novelcraft_version=__version__, entries=self.entries).model_dump(
                mode="json", exclude_none=True
            ),
        )


def settings_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two settings mappings (for readable mismatch errors)."""
    out: list[str] = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += settings_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


# --------------------------------------------------------------------------- content-keyed store


class StoreLine(Record):
    """One line of a :class:`ResultStore` of LLM answers (``llm/<stage>.jsonl``)."""

    hash: str = Field(..., description="content hash of the task: prompt, schema, limits, engine, templates")
    key: str = Field(..., description="the item, e.g. BOOK/summary/narrative/scene3")
    value: Any = Field(..., description="the validated answer (null: none passed; the caller fell back)")
    error: str | None = Field(None, description="why no answer passed (with a null value)")
    flagged: bool = False
    flag_reason: str | None = None
    attempts: int = 0
    compressions: int = 0


class ResultStore:
    """Append-only JSONL of finished items, keyed by a content hash (``"hash"`` in each line).

    A line is appended and fsynced as soon as its round finishes; a torn last line (killed mid-write) is
    cut on load, and the last line of a key wins, so resuming never duplicates work or results.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._data: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            with locked(self.path):  # another process may be appending: never cut its line in half
                self._drop_torn_tail()
                with self.path.open("r", encoding="utf-8") as f:
                    for line in f:
                        try:
                            rec = json.loads(line)
                        except ValueError:
                            continue
                        if isinstance(rec, dict) and "hash" in rec:
                            self._data[rec["hash"]] = rec

    def _drop_torn_tail(self) -> None:
        # A line cut by a kill has no newline; appending after it would glue the next record onto it.
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def get(self, digest: str) -> dict[str, Any] | None:
        """The stored record of ``digest``, if any."""
        return self._data.get(digest)

    def put_many(self, records: Iterable[dict[str, Any]]) -> None:
        """Append ``records`` (each with its ``hash``), one JSON line each."""
        records = list(records)
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n" for rec in records)
        with self.path.open("a", encoding="utf-8") as f, locked(self.path):
            f.write(text)  # whole lines under the lock: appends of several processes never interleave
            f.flush()
            os.fsync(f.fileno())
        for rec in records:
            self._data[rec["hash"]] = rec

    def __len__(self) -> int:
        return len(self._data)


class StoreGroup:
    """Several :class:`ResultStore` s behind one interface, for a call that mixes the tasks of several
    stages: a digest is looked up in each, a finished record goes to the store ``route(key)`` names."""

    def __init__(self, stores: dict[str, ResultStore], route: Callable[[str], str]) -> None:
        self.stores = stores
        self.route = route

    def get(self, digest: str) -> dict[str, Any] | None:
        """The stored record of ``digest`` in any of the stores."""
        for store in self.stores.values():
            rec = store.get(digest)
            if rec is not None:
                return rec
        return None

    def put_many(self, records: Iterable[dict[str, Any]]) -> None:
        """Append each record to the store of its stage."""
        by_stage: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            by_stage.setdefault(self.route(rec["key"]), []).append(rec)
        for stage, recs in by_stage.items():
            self.stores[stage].put_many(recs)

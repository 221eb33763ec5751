"""``novelcraft.io``: atomic writes leave no temporary file and create outputs with the umask's modes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from novelcraft.io import (
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    create_temp_dir,
    create_temp_file,
    dumps_json,
    sha256_file,
    sha256_text,
)


@pytest.fixture
def umask() -> Iterator[object]:
    """``umask(value)`` sets the process umask; the one before the test is restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    plain = tmp_path / "plain.txt"
    with open(plain, "w", encoding="utf-8") as fh:
        fh.write("x")
    written = [
        atomic_write_text(tmp_path / "a.txt", "text\n"),
        atomic_write_json(tmp_path / "b.json", {"k": 1}),
        atomic_write_jsonl(tmp_path / "c.jsonl", [{"k": 1}, {"k": 2}]),
    ]
    for path in written:
        assert mode(path) == 0o666 & ~mask == mode(plain), path.name
    # a replaced file takes the umask's mode too, whatever it had before
    os.chmod(written[0], 0o600)
    assert mode(atomic_write_text(written[0], "again\n")) == 0o666 & ~mask


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_temporary_folders_get_the_mode_of_mkdir(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    plain = tmp_path / "plain"
    plain.mkdir()
    made = create_temp_dir(tmp_path, prefix=".out.")
    assert made.parent == tmp_path and made.name.startswith(".out.") and made.is_dir()
    assert mode(made) == 0o777 & ~mask == mode(plain)
    assert create_temp_dir(tmp_path, prefix=".out.") != made


def test_temporary_files_are_new_and_unique(tmp_path: Path) -> None:
    fd, path = create_temp_file(tmp_path, prefix=".x.")
    os.close(fd)
    fd2, other = create_temp_file(tmp_path, prefix=".x.")
    os.close(fd2)
    assert path != other and path.name.startswith(".x.") and path.suffix == ".tmp"


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "sub" / "out.txt", "é\n")
    assert target.read_bytes() == "é\n".encode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]

    with pytest.raises(UnicodeEncodeError):  # fails while writing the temporary file
        atomic_write_text(tmp_path / "sub" / "bad.txt", "a lone surrogate \ud800")
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_json_and_hashes() -> None:
    assert dumps_json({"b": 1, "a": "é"}) == '{\n  "b": 1,\n  "a": "é"\n}\n'
    assert sha256_text("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_sha256_file_reads_in_chunks(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    assert sha256_file(f, chunk=1) == sha256_text("abc")

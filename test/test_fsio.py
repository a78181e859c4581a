"""Atomic writes: content, permissions, no temporaries left, the old file kept on failure."""

import os

import pytest

from naima_ros.fsio import atomic_write, atomic_write_bytes, atomic_write_text


def test_writes_content_with_normal_permissions(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic_write_text(path, "één\nline\r\n")
    assert path.read_bytes() == "één\nline\r\n".encode()
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "b.bin"
    atomic_write_bytes(path, b"old")

    def fail(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.bin"]

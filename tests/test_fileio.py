"""Atomic writes: all-or-nothing replacement and ordinary (umask) permissions."""

from __future__ import annotations

import os
import stat

import pytest

from analysis.fileio import atomic_path, atomic_write_text, default_mode, share_dir


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_file_gets_the_umask_mode_not_mkstemps_private_one(tmp_path, umask_022):
    path = atomic_write_text(tmp_path / "sub" / "a.txt", "hé\n")
    assert path.read_bytes() == "hé\n".encode()
    assert _mode(path) == 0o644 == default_mode()
    os.umask(0o077)
    assert _mode(atomic_write_text(tmp_path / "b.txt", "x")) == 0o600
    assert _mode(atomic_write_text(tmp_path / "c.txt", "x", mode=0o640)) == 0o640
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.txt", "c.txt", "sub"]


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "r.json", "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_share_dir_gives_mkdtemp_directories_the_mkdir_mode(tmp_path, umask_022):
    import tempfile

    d = tempfile.mkdtemp(dir=tmp_path)
    assert _mode(d) == 0o700
    assert _mode(share_dir(d)) == 0o755 == default_mode(directory=True)

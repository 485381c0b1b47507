"""Atomic file writes with ordinary permissions.

Every file the package writes (processed tables, ``results.json``, reports, KPI tables) goes through
:func:`atomic_path`: it is written to a temporary file beside its target and moved into place with
:func:`os.replace`, so a reader sees either the old file or the complete new one, and a failure
leaves the old file as it was and no temporary file behind.

:func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` create private files (``0600``) and
directories (``0700``). Reports and processed data are meant to be shared, so the moved file or
directory gets the mode an ordinary ``open()`` or ``mkdir()`` would give under the current umask
(``0644`` and ``0755`` under the usual ``022``), unless a mode is asked for (the salt file is
``0600``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "default_mode", "share_dir"]


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(*, directory: bool = False) -> int:
    """The mode ``open()`` (``0o666``) or ``mkdir()`` (``0o777``) gives under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
        The file to (re)write. Its directory is created if absent.
    mode : int, optional
        Permission bits of the written file; default :func:`default_mode`.

    Yields
    ------
    Path
        Where the caller writes the new content (it may be opened by name, e.g. by pyarrow).

    Notes
    -----
    If the body raises, the temporary file is removed, ``path`` is untouched and the exception
    propagates.

    Examples
    --------
    >>> with atomic_path("out/table.parquet") as tmp:  # doctest: +SKIP
    ...     df.to_parquet(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, mode: int | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_path`.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def share_dir(path: str | os.PathLike) -> Path:
    """Give a directory made by :func:`tempfile.mkdtemp` the mode ``mkdir()`` would have given it.

    Call it before moving the finished temporary directory into place.
    """
    path = Path(path)
    os.chmod(path, default_mode(directory=True))
    return path

"""Atomic file and directory replacement: readers see the old content or the new, never half."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["copy_file", "fsync_write", "link_or_copy", "replace_dir", "temp_dir_beside",
           "temp_file_beside", "write_whole"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def fsync_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and flush it to disk."""
    with path.open("xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def copy_file(src: Path, dest: Path, *, sync: bool = True) -> None:
    """A new file ``dest`` with ``src``'s bytes (a MiB at a time), flushed to disk if
    ``sync``."""
    with src.open("rb") as fi, dest.open("xb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)
        if sync:
            fo.flush()
            os.fsync(fo.fileno())


def link_or_copy(src: Path, dest: Path, *,
                 link: Callable[[Path, Path], None] = os.link) -> None:
    """``dest`` with ``src``'s bytes: a hard link (both read-only copies of the same digest:
    no space twice) where the filesystem allows, else a copy (not flushed)."""
    try:
        link(src, dest)
    except OSError:
        copy_file(src, dest, sync=False)


def write_whole(path: Path, data: bytes) -> None:
    """``data`` at ``path``, whole or not at all (a temporary file beside it, renamed)."""
    tmp = temp_file_beside(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def temp_dir_beside(dest: Path) -> Path:
    """A fresh hidden directory next to ``dest`` (same filesystem, so rename is atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))


def temp_file_beside(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    return Path(name)


def replace_dir(src: Path, dest: Path) -> None:
    """Move directory ``src`` to ``dest``, replacing ``dest`` if it exists.

    Uses renameat2(RENAME_EXCHANGE) on Linux, so ``dest`` flips from old to new in one
    step; elsewhere, falls back to two renames (a brief moment with no ``dest``).
    """
    if not dest.exists() and not dest.is_symlink():
        os.rename(src, dest)
        return
    if _exchange(src, dest):  # src now holds the old content
        if src.is_dir() and not src.is_symlink():
            shutil.rmtree(src)
        else:
            src.unlink()
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    os.rmdir(old)
    os.rename(dest, old)
    os.rename(src, dest)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
        rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        return bool(rc == 0)
    return False

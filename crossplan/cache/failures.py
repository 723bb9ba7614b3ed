"""The store's failure boundary: what the filesystem or SQLite says about the place the store
lives (read-only, full, no permission, no locking) becomes an EnvironmentProblem (exit 3)
that names the store and what to do, instead of a traceback.

Only those causes are translated; anything else (a bug, a missing file the store itself
should have) propagates unchanged."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import diskcache

from crossplan.errors import EnvironmentProblem

__all__ = ["boundary", "translate"]

_ELSEWHERE = "or point --cache-dir (CROSSPLAN_CACHE_DIR) at another directory"

# errno -> (what it means for the store, what to do)
_ERRNOS: dict[int, tuple[str, str]] = {
    errno.EROFS: ("is on a read-only filesystem",
                  f"remount it read-write {_ELSEWHERE}"),
    errno.ENOSPC: ("is out of space (disk full)",
                   f"free space there (`plan cache gc --max-size ...`) {_ELSEWHERE}"),
    errno.EDQUOT: ("is over its disk quota",
                   f"free space there (`plan cache gc --max-size ...`) {_ELSEWHERE}"),
    errno.EACCES: ("is not writable by this user (permission denied)",
                   f"fix its owner or permissions {_ELSEWHERE}"),
    errno.EPERM: ("does not allow this operation (operation not permitted)",
                  f"fix its owner, permissions or attributes {_ELSEWHERE}"),
    errno.ENOLCK: ("is on a filesystem without the file locking the store needs",
                   f"use a store on a local filesystem (not NFS/SMB/FUSE): {_ELSEWHERE}"),
    errno.EOPNOTSUPP: ("is on a filesystem without the file locking the store needs",
                       f"use a store on a local filesystem (not NFS/SMB/FUSE): {_ELSEWHERE}"),
    errno.ENOSYS: ("is on a filesystem without the file locking the store needs",
                   f"use a store on a local filesystem (not NFS/SMB/FUSE): {_ELSEWHERE}"),
    errno.EIO: ("hit an I/O error from its disk",
                f"check the disk (dmesg) {_ELSEWHERE}"),
}

# SQLite's words (sqlite3.OperationalError has no errno) -> the errno they mean
_SQLITE: tuple[tuple[str, int], ...] = (
    ("readonly database", errno.EROFS),
    ("read-only", errno.EROFS),
    ("database or disk is full", errno.ENOSPC),
    ("disk is full", errno.ENOSPC),
    ("database is locked", errno.ENOLCK),
    ("locking protocol", errno.ENOLCK),
    ("disk i/o error", errno.EIO),
    ("unable to open database file", errno.EACCES),
)


def translate(exc: BaseException, root: Path, doing: str) -> EnvironmentProblem | None:
    """The EnvironmentProblem ``exc`` stands for, or None when it is not about where the store
    lives. ``doing`` says what the store was doing ("publishing an entry")."""
    code: int | None = None
    detail = str(exc)
    if isinstance(exc, OSError):
        code = exc.errno
        if exc.filename:
            detail = f"{exc.strerror or exc}: {exc.filename}"
    elif isinstance(exc, diskcache.Timeout):
        code = errno.ENOLCK
        detail = "timed out waiting for the SQLite index lock"
    elif isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        code = next((c for words, c in _SQLITE if words in text), None)
        detail = f"SQLite: {exc}"
    if code is None or code not in _ERRNOS:
        return None
    what, hint = _ERRNOS[code]
    if code == errno.ENOLCK and "database is locked" in detail:
        what = ("could not lock its SQLite index (another process holds it for too long, or "
                "the filesystem's locking does not work)")
    return EnvironmentProblem(f"the store at {root} {what} ({doing}: {detail})", hint=hint)


@contextlib.contextmanager
def boundary(root: Path, doing: str) -> Iterator[None]:
    """Run the block; a filesystem/SQLite failure about the store's place is re-raised as an
    EnvironmentProblem naming ``root``."""
    try:
        yield
    except (OSError, sqlite3.OperationalError, diskcache.Timeout) as exc:
        problem = translate(exc, root, doing)
        if problem is None:
            raise
        raise problem from exc

"""Leases: what an open store (a run, a `plan cache` command) is using, so that `plan cache gc`
in another process never deletes it, and so that what a killed process left in ``tmp/`` is
recognised as garbage by the next one.

Each open Store holds a lease file ``leases/<pid>-<token>`` with a shared flock for its whole
life. The file lists the action keys and blob digests the store read or produced (``k KEY``,
``b DIGEST``), after a first line ``started <unix time>``. A lease whose flock can be taken
exclusively belongs to a dead process (a SIGKILL releases flocks; a reused pid does not hold
the old lock, and the random token tells two owners with one pid apart): it is removed, and
so is every ``tmp/...@<pid>-<token>@...`` entry of that owner (see ``tmp_prefix``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DOCS", "LAYERS", "STASH", "STASH_MANIFEST", "Lease", "LeaseInfo", "flocked", "force_rmtree",
    "live_leases", "owner_of", "sweep_tmp", "tmp_prefix",
]

LEASES = "leases"
STASH = "stash"  # steps' work dirs kept for their next run (executors/stash.py)
DOCS = "docs"  # registry manifests and configs kept by digest (backends/oci/docs.py)
LAYERS = "layers"  # base image layers kept by digest (backends/oci/kept.py)
# In a kept dir: what was staged, and the recipe file it is for (its mtime: when it was kept)
STASH_MANIFEST = ".crossplan-stash.json"
_OWNER = re.compile(r"@(\d+-[0-9a-f]{8})@")


def tmp_prefix(kind: str, lease_id: str) -> str:
    """The name prefix of a tmp/ entry owned by ``lease_id`` (``@`` is never in a label)."""
    return f"{kind}-@{lease_id}@"


def owner_of(name: str) -> str | None:
    """The lease id in a ``tmp/`` entry's name (``KIND-...@<lease id>@RANDOM``), if any."""
    m = _OWNER.search(name)
    return m.group(1) if m else None


class Lease:
    """This store handle's claim: created locked, then renamed into ``leases/`` (so no other
    process ever sees it unlocked while its owner lives)."""

    def __init__(self, root: Path) -> None:
        self.id = f"{os.getpid()}-{secrets.token_hex(4)}"
        directory = root / LEASES
        self.path = directory / self.id
        self.started = time.time()
        self._mutex = threading.Lock()
        self._seen: set[str] = set()
        staging = directory / f".{self.id}.new"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                     0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            os.write(fd, f"started {self.started!r}\n".encode())
            os.replace(staging, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                staging.unlink()
            raise
        self._fd: int | None = fd

    def register(self, keys: Iterable[str] = (), blobs: Iterable[str] = ()) -> None:
        """Note keys and blobs as in use (before reading them: gc reads leases first)."""
        lines = [f"k {k}" for k in keys] + [f"b {b}" for b in blobs]
        with self._mutex:
            new = [ln for ln in lines if ln not in self._seen]
            if not new or self._fd is None:
                return
            os.write(self._fd, ("\n".join(new) + "\n").encode())
            self._seen.update(new)

    def release(self) -> None:
        with self._mutex:
            if self._fd is None:
                return
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self._fd)
            self._fd = None


@dataclass
class LeaseInfo:
    """A live lease as gc sees it."""

    id: str
    started: float
    keys: set[str] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)


@contextlib.contextmanager
def _try_exclusive(path: Path) -> Iterator[bool]:
    """Yields True while holding ``path``'s flock exclusively (its owner is dead), False if a
    live owner holds it; a vanished file counts as dead."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _parse(lease_id: str, text: str) -> LeaseInfo:
    info = LeaseInfo(lease_id, time.time())
    for line in text.splitlines():
        kind, _, value = line.partition(" ")
        if kind == "started":
            with contextlib.suppress(ValueError):
                info.started = float(value)
        elif kind == "k":
            info.keys.add(value)
        elif kind == "b":
            info.blobs.add(value)
    return info


def live_leases(root: Path) -> dict[str, LeaseInfo]:
    """Every live lease under ``root``; dead ones (and stale staging files) are removed."""
    live: dict[str, LeaseInfo] = {}
    directory = root / LEASES
    if not directory.is_dir():
        return live
    now = time.time()
    for p in directory.iterdir():
        if p.name.startswith("."):
            with contextlib.suppress(OSError):
                if now - p.lstat().st_mtime > 60:
                    p.unlink()
            continue
        with _try_exclusive(p) as dead:
            if dead:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                continue
        try:
            live[p.name] = _parse(p.name, p.read_text(errors="replace"))
        except FileNotFoundError:  # released meanwhile
            continue
    return live


def sweep_tmp(root: Path, live: Iterable[str], *, unowned_older_than: float | None = None) -> int:
    """Remove ``tmp/`` entries whose owner lease is not live; entries with no owner in their
    name only when older than ``unowned_older_than`` seconds (None: never). Returns how many."""
    alive = set(live)
    now = time.time()
    removed = 0
    directory = root / "tmp"
    if not directory.is_dir():
        return 0
    for p in directory.iterdir():
        owner = owner_of(p.name)
        if owner is not None:
            if owner in alive:
                continue
        else:
            try:
                age = now - p.lstat().st_mtime
            except FileNotFoundError:
                continue
            if unowned_older_than is None or age <= unowned_older_than:
                continue
        force_rmtree(p)
        removed += 1
    return removed


def _make_writable_and_retry(func: Callable[..., Any], path: str, _exc: Any) -> None:
    with contextlib.suppress(OSError):
        parent = os.path.dirname(path)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU)
        func(path)


def force_rmtree(path: Path) -> None:
    """Remove a file or tree, read-only directories (Go's module cache) included; best
    effort (what cannot be removed stays for the next sweep)."""
    with contextlib.suppress(FileNotFoundError):
        if not path.is_dir() or path.is_symlink():
            path.unlink()
        elif sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_make_writable_and_retry)
        else:
            shutil.rmtree(path, onerror=_make_writable_and_retry)


@contextlib.contextmanager
def flocked(path: Path, how: int) -> Iterator[None]:
    """Hold ``path``'s flock (a new open file description: threads exclude each other too)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)  # releases the lock

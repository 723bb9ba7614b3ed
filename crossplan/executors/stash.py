"""Staged work dirs kept for the next run of the same step (as Bazel reuses sandbox dirs):
the files still as staged, by stat, are not copied again; everything else is removed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from crossplan.cache.leases import STASH_MANIFEST
from crossplan.cache.store import STASH, Store
from crossplan.executors.workdir import discard, new_workdir
from crossplan.planner.actions import InputFile

__all__ = ["MANIFEST", "Record", "Staged", "claim", "enabled", "keep", "record", "slot", "started"]

# Written by crossplan after the step has run, never there while it runs (claim removes it).
MANIFEST = STASH_MANIFEST
ENV = "CROSSPLAN_REUSE_WORKDIRS"  # "0": every step stages into a fresh work dir
_VERSION = 1
_COARSE = 5  # CLOCK_REALTIME_COARSE (Linux), which the time module does not name

# Why a file that stat says is as staged is as staged: any write, truncate, chmod, chown,
# utime, link, rename over it or xattr change sets the file's ctime to the current time,
# which no unprivileged process can set back. A change within the same clock tick as the
# staging would keep the ctime: a file is trusted only if its ctime is before the coarse
# clock (the file systems' timestamp source) read just before the step's command started,
# git's racy-file rule. Only sandboxed steps' dirs are kept: their processes all end with
# the step (their own pid namespace), none can write to a kept file after the check.


class Staged(NamedTuple):
    """One staged input as it was right after staging: what it holds (blake3 digest, or
    the target of a symlink) and its lstat. (A tuple: a few hundred are made per step.)"""

    what: str
    executable: bool
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    mode: int


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    return (environ if environ is not None else os.environ).get(ENV, "1") != "0"


def slot(project: str, node: str) -> str:
    """The name a step's kept dir has under the store's stash/: one per recipe file (its
    absolute path) and node."""
    text = f"{os.path.abspath(project) if project else ''}\0{node}".encode(
        "utf-8", "surrogateescape")
    return hashlib.sha256(text).hexdigest()[:24]


def started() -> int:
    """The coarse clock, read just before a step's command starts (see above)."""
    return time.clock_gettime_ns(_COARSE)


def claim(store: Store, name: str, label: str,
          inputs: Iterable[InputFile]) -> tuple[Path, set[str]]:
    """A work dir for a step: its kept dir if there is one (taken by an atomic rename, so
    two runs never share it), with everything but the inputs still as staged removed; else
    a fresh one. Returns the dir and the inputs it already holds."""
    workdir = new_workdir(store, label)
    try:
        os.rename(store.root / STASH / name, workdir)  # replaces the empty fresh dir
    except OSError:
        return workdir, set()
    try:
        kept = _refresh(workdir, inputs)
    except (OSError, ValueError, KeyError, TypeError):
        kept = None
    if kept is None:  # not as it should be: start from a fresh dir
        discard(workdir)
        return new_workdir(store, label), set()
    return workdir, kept


@dataclass(frozen=True)
class Record:
    """A work dir right after staging: each input's ``Staged``, each directory's mode and
    extended attributes (a directory's ctime changes with its entries: it cannot tell)."""

    files: dict[str, Staged]
    dirs: dict[str, tuple[int, list[list[str]]]]


def record(workdir: Path, inputs: Iterable[InputFile]) -> Record:
    """The staged inputs' and their directories' lstat, taken right after staging."""
    root = str(workdir) + "/"
    files: dict[str, Staged] = {}
    for f in inputs:
        st = os.lstat(root + f.path)
        files[f.path] = Staged(f.link if f.link is not None else f.digest, f.executable,
                               st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                               st.st_mode)
    dirs = {d: (os.lstat(root + d).st_mode, _xattrs(root + d)) for d in _parents(files)}
    return Record(files, dirs)


def keep(store: Store, name: str, workdir: Path, staged: Record, started_ns: int, *,
         project: str = "") -> None:
    """Keep a step's work dir (after its command succeeded and its outputs were collected)
    for the next run, with what was staged and the recipe file it is for (``project``: gc
    drops the dirs of recipes that are gone); discard it when that cannot be done."""
    root = str(workdir)
    try:
        doc = {"v": _VERSION, "started": started_ns, "dirs": staged.dirs,
               "files": staged.files,
               "project": os.path.abspath(project) if project else ""}
        manifest = os.path.join(root, MANIFEST)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(manifest)  # whatever the step left there (a directory fails: discarded)
        fd = os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        (store.root / STASH).mkdir(exist_ok=True)
        os.rename(workdir, store.root / STASH / name)  # fails if another run kept one
    except OSError:
        discard(workdir)


def _xattrs(path: str) -> list[list[str]]:
    """A directory's extended attributes (a security label, an ACL), as [name, hex value]."""
    return [[n, os.getxattr(path, n, follow_symlinks=False).hex()]
            for n in sorted(os.listxattr(path, follow_symlinks=False))]


def _parents(paths: Iterable[str]) -> set[str]:
    """Every directory holding one of ``paths``, the root ("") included."""
    out = {""}
    for p in paths:
        d = os.path.dirname(p)
        while d not in out:
            out.add(d)
            d = os.path.dirname(d)
    return out


def _refresh(workdir: Path, inputs: Iterable[InputFile]) -> set[str] | None:
    """Trust the kept inputs whose content the plan still wants and whose lstat is as
    staged; remove every other entry. None when the dir is not what was kept."""
    root = str(workdir)
    manifest = os.path.join(root, MANIFEST)
    with open(manifest, "rb") as fh:
        doc = json.load(fh)
    os.unlink(manifest)
    if doc.get("v") != _VERSION:
        return None
    tick: int = doc["started"]
    planned = {f.path: f for f in inputs}
    kept: set[str] = set()
    lstat, prefix = os.lstat, root + "/"
    for path, (what, executable, ino, size, mtime_ns, ctime_ns, mode) in doc["files"].items():
        f = planned.get(path)
        if f is None or ctime_ns >= tick or executable != f.executable or \
                what != (f.link if f.link is not None else f.digest):
            continue
        try:
            st = lstat(prefix + path)
        except OSError:
            continue
        if st.st_nlink == 1 and st.st_ino == ino and st.st_ctime_ns == ctime_ns and \
                st.st_mtime_ns == mtime_ns and st.st_size == size and st.st_mode == mode:
            kept.add(path)
    dirs: dict[str, tuple[int, list[list[str]]]] = {
        d: (int(m), list(x)) for d, (m, x) in doc["dirs"].items()}
    needed = _parents(kept)
    if any(d not in dirs for d in needed):
        return None
    if not _prune(root, "", kept, needed, dirs):
        return None
    return kept


def _prune(root: str, rel: str, kept: set[str], needed: set[str],
           staged: Mapping[str, tuple[int, list[list[str]]]]) -> bool:
    """Remove what is neither a kept input nor a directory holding one; put kept
    directories' modes back. False when a directory is not as it can be trusted."""
    here = os.path.join(root, rel) if rel else root
    st = os.lstat(here)
    mode, xattrs = staged[rel]
    if not stat.S_ISDIR(st.st_mode) or _xattrs(here) != xattrs:
        return False
    if st.st_mode != mode:
        os.chmod(here, stat.S_IMODE(mode))
    with os.scandir(here) as it:
        entries = list(it)
    for entry in entries:
        sub = f"{rel}/{entry.name}" if rel else entry.name
        if sub in needed and not entry.is_dir(follow_symlinks=False):
            return False  # a kept input's directory swapped for a link or a file
        if entry.is_dir(follow_symlinks=False):
            if sub in needed:
                if not _prune(root, sub, kept, needed, staged):
                    return False
            else:
                shutil.rmtree(entry.path)
        elif sub not in kept:
            os.unlink(entry.path)
    return True

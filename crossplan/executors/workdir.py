"""Hermetic work dirs: copy in declared inputs and deps' outputs; collect outputs into the store."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from crossplan.cache.failures import boundary
from crossplan.cache.store import Entry, OutputFile, Store
from crossplan.errors import StepFailed
from crossplan.hashing import copy_hashing
from crossplan.planner.actions import InputFile

__all__ = ["InputChanged", "collect_outputs", "discard", "later", "new_workdir", "populate",
           "wait_discarded"]


class InputChanged(StepFailed):
    """A declared input's bytes differ from those its key was computed from: it changed
    between planning and staging. Nothing is stored under the stale key."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(
            f"input changed during the build: {path} ({what})",
            hint="an input was edited while `plan run` ran; run it again (the new content "
            "gets its own key)",
        )


def new_workdir(store: Store, label: str) -> Path:
    """A fresh dir under the store's tmp/, named for the store handle's lease (so a killed
    run's dirs are swept when the store is next opened); a full or read-only store is an
    EnvironmentProblem."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60]
    with boundary(store.root, "creating a work dir"):
        return Path(tempfile.mkdtemp(prefix=store.tmp_prefix(f"work-{safe}"),
                                     dir=store.root / "tmp"))


_reaper: list[ThreadPoolExecutor] = []
_pending: set[Future[None]] = set()
_removing: list[subprocess.Popen[bytes]] = []
_reaper_lock = threading.Lock()


def discard(workdir: Path) -> None:
    """Remove a finished work dir in the background: the node's result, and the nodes
    waiting for it, need not wait for its thousands of unlinks. `rm -rf` does them in a
    process of its own (a Python rmtree holds the GIL for each, slowing the nodes still
    running here); without `rm`, a thread does. Every run waits for the removals it started
    before it returns (``wait_discarded``, in the scheduler); a killed run's dirs are swept
    as before, by the store's lease."""
    try:
        proc = subprocess.Popen(
            [*_LOW_PRIORITY, "rm", "-rf", "--", str(workdir)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        proc = None
    if proc is None:
        later(functools.partial(shutil.rmtree, workdir, ignore_errors=True))
        return
    with _reaper_lock:
        _removing.append(proc)


# at the lowest CPU priority when `nice` is there: the nodes still running (an image's
# layers compressing on every core) go first; the run waits for the removals at its end
_LOW_PRIORITY = ("nice", "-n", "19") if shutil.which("nice") else ()


def _forget(fut: Future[None]) -> None:
    with _reaper_lock:
        _pending.discard(fut)


def later(fn: Callable[[], None]) -> None:
    """Run ``fn`` (tidying a finished node's work dir) on the reaper's thread: the node's
    result need not wait for it; ``wait_discarded`` does. Its exceptions are not raised."""
    with _reaper_lock:
        if not _reaper:
            _reaper.append(ThreadPoolExecutor(1, thread_name_prefix="workdir-reaper"))
        fut = _reaper[0].submit(fn)
        _pending.add(fut)
    fut.add_done_callback(_forget)


def wait_discarded() -> None:
    """Block until every work dir handed to ``discard`` is gone (as far as `rm -rf` and
    rmtree, which ignore errors, could remove it) and every ``later`` has run."""
    while True:
        with _reaper_lock:
            pending, removing = list(_pending), list(_removing)
        if not pending and not removing:
            return
        for fut in pending:
            with contextlib.suppress(Exception):
                fut.result()
            _forget(fut)
        for proc in removing:
            proc.wait()
        with _reaper_lock:
            _removing[:] = [p for p in _removing if p.poll() is None]


def populate(
    workdir: Path, inputs: tuple[InputFile, ...], deps: dict[str, Entry], store: Store,
    *, kept: Collection[str] = (),
) -> None:
    """Copy the input root's files (only those digested) and deps' outputs (their dirs);
    ``kept``: inputs a kept work dir already holds as staged (executors/stash.py).

    Each file is hashed as it is copied and must hash to the digest its key was computed
    from (``InputChanged`` otherwise): the key describes the staged bytes."""
    root = str(workdir)
    made: set[str] = set()
    for f in inputs:
        dest = os.path.join(root, f.path)
        if f.path in kept:  # its mtime too is the staging's, as a copy's would be
            os.utime(dest, follow_symlinks=f.link is None)
            continue
        parent = os.path.dirname(dest)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        if f.link is not None:
            os.symlink(f.link, dest)
            continue
        assert f.origin is not None
        try:
            staged = copy_hashing(f.origin, dest, 0o755 if f.executable else 0o644)
        except FileNotFoundError:
            raise InputChanged(f.path, "removed") from None
        if staged != f.digest:
            raise InputChanged(f.path, f"planned blake3 {f.digest[:12]}, staged {staged[:12]}")
    for where, entry in deps.items():
        store.materialize(entry, workdir / where)


def collect_outputs(
    workdir: Path, outputs: tuple[str, ...], store: Store, *, step: str
) -> tuple[OutputFile, ...]:
    """Move each declared output (file or directory tree) into the store as blobs (hashed
    and flushed there; the large ones on threads of their own: blake3 and fsync release the
    GIL, and an image's layers are flushed at once rather than one after the other)."""
    found: list[tuple[Path, str, os.stat_result]] = []  # each output's lstat, taken once
    for out in outputs:
        path = workdir / out
        if not os.path.lexists(path):
            raise StepFailed(
                f"exited 0 but did not produce declared output '{out}'", step=step,
                hint="make the command write it, or fix `outputs`",
            )
        if path.is_dir() and not path.is_symlink():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                # os.walk lists symlinks to directories as dirs (and doesn't follow them):
                # keep them as links rather than silently dropping them.
                links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
                for name in sorted(filenames + links):
                    full = Path(dirpath) / name
                    found.append((full, full.relative_to(workdir).as_posix(), full.lstat()))
        else:
            found.append((path, Path(out).as_posix(), path.lstat()))
    large = [f for f in found if stat.S_ISREG(f[2].st_mode) and f[2].st_size >= _LARGE]
    files: list[OutputFile] = []
    if len(large) > 1:
        with ThreadPoolExecutor(min(len(large), _COLLECTORS),
                                thread_name_prefix="collect") as pool:
            files += pool.map(lambda f: _collect_one(f[0], f[1], f[2], store), large)
        taken = {id(f) for f in large}
        found = [f for f in found if id(f) not in taken]
    files += (_collect_one(full, rel, st, store) for full, rel, st in found)
    return tuple(sorted(files, key=lambda f: f.path))


_LARGE = 1 << 20  # outputs from this size are collected on threads when there are several
_COLLECTORS = 4


def _collect_one(full: Path, rel: str, st: os.stat_result, store: Store) -> OutputFile:
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(full)
        digest = store.put_bytes(target.encode())
        return OutputFile(rel, digest, 0o777, 0, target)
    mode = 0o755 if st.st_mode & 0o111 else 0o644
    digest, size = store.put_file(full, move=True)
    return OutputFile(rel, digest, mode, size)

"""Garbage collection of the local store, respecting live leases (running builds)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crossplan.cache.leases import (
    DOCS,
    LAYERS,
    STASH,
    STASH_MANIFEST,
    flocked,
    live_leases,
    sweep_tmp,
)

if TYPE_CHECKING:
    from crossplan.cache.store import Entry, Store

__all__ = ["GcReport", "collect"]


@dataclass
class GcReport:
    """What gc did, and what it left because a live lease (a running build) uses it."""

    removed: int = 0
    freed: int = 0
    leased_entries: list[str] = field(default_factory=list)
    leased_blobs: int = 0
    leases: int = 0
    swept_tmp: int = 0
    stashed: int = 0  # kept work dirs removed
    stash_left: int = 0  # kept work dirs left, and their bytes
    stash_bytes: int = 0
    layers_removed: int = 0  # base image layers kept by digest (backends/oci/kept.py)
    layers_left: int = 0  # those left, and the bytes they take of their own
    layer_bytes: int = 0


def collect(store: Store, max_size: int, *, grace: float = 0.0) -> GcReport:
    """Make blobs, kept work dirs and kept base layers fit ``max_size``: first the kept dirs
    go (those of recipes that are gone, then the least recently kept: they only spare
    copies), then the least recently used base layers (they spare downloads), then the least
    recently created entries; then unreferenced blobs are deleted. Blobs no entry ever
    named are kept while younger than ``grace`` seconds. All under gc.lock (exclusive;
    readers register what they use under it shared), never touching what another live lease
    uses: its keys, its blobs, nor any blob younger than the oldest live lease (what a build
    wrote but has not published yet)."""
    root = store.root
    with flocked(root / "locks" / "gc.lock", fcntl.LOCK_EX):
        leases = live_leases(root)
        own = store.lease.id if store.lease is not None else None
        others = [v for k, v in leases.items() if k != own]
        report = GcReport(leases=len(others))
        leased_keys: set[str] = set().union(*(v.keys for v in others))
        leased_blobs: set[str] = set().union(*(v.blobs for v in others))
        since = min((v.started for v in others), default=None)
        before = store.size()
        remaining = sorted(store.entries(), key=lambda e: e.created)
        live = _blob_sizes(remaining)
        kept, report.stashed, freed_kept = _trim_stash(store, max_size - sum(live.values()))
        report.stash_left, report.stash_bytes = len(kept), sum(kept)
        left, report.layers_removed, freed_layers = _trim_layers(
            root / LAYERS, max_size - sum(live.values()) - report.stash_bytes,
            older_than=DOCS_DAYS * 86400)
        report.layers_left, report.layer_bytes = len(left), sum(left)
        evicted: set[str] = set()
        for e in list(remaining):
            if sum(live.values()) <= max_size - report.stash_bytes - report.layer_bytes:
                break
            if e.key in leased_keys:
                report.leased_entries.append(e.key)
                continue
            evicted |= set(e.blobs())
            store.remove(e.key)
            report.removed += 1
            remaining.remove(e)
            live = _blob_sizes(remaining)
        report.leased_blobs = _sweep(store, set(live), evicted, grace, leased_blobs, since)
        report.swept_tmp = sweep_tmp(root, leases, unowned_older_than=3600.0)
        _sweep_docs(root / DOCS, older_than=DOCS_DAYS * 86400)
        report.freed = before - store.size() + freed_kept + freed_layers
    return report


def _sweep(store: Store, live: set[str], evicted: set[str], grace: float, leased: set[str],
           since: float | None) -> int:
    """Delete blobs no remaining entry names; returns how many were kept for a lease."""
    now = time.time()
    kept = 0
    for p in (store.root / "blobs").glob("*/*"):
        if p.name in live:
            continue
        try:
            mtime = p.stat().st_mtime
        except FileNotFoundError:
            continue
        if p.name in leased or (since is not None and mtime >= since - 1.0):
            kept += 1
            continue
        if p.name in evicted or now - mtime >= grace:
            os.chmod(p, stat.S_IWUSR | stat.S_IRUSR)
            p.unlink(missing_ok=True)
    return kept


def _blob_sizes(entries: list[Entry]) -> dict[str, int]:
    live: dict[str, int] = {}
    for e in entries:
        for f in e.files:
            live[f.digest] = f.size
        if e.log:
            live[e.log] = 0
    return live


DOCS_DAYS = 30  # registry documents kept longer are dropped (asked again if still used)


def _sweep_docs(root: Path, *, older_than: float) -> None:
    """Drop the registry documents (manifests, configs) kept more than ``older_than``
    seconds ago: a few KiB each, asked of the registry again by the next plan using one."""
    now = time.time()
    for path in root.glob("*/*"):
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime >= older_than:
                path.unlink()


def _trim_layers(root: Path, budget: int, *, older_than: float) -> tuple[list[int], int, int]:
    """Drop the base layers kept by digest that no build used for ``older_than`` seconds
    (a use refreshes the mtime) and fetches cut off over an hour ago, then the least
    recently used until the bytes they take of their own (a layer hard-linked into a store
    entry takes none) fit ``budget``. Returns the own sizes of those left, how many were
    removed and the bytes freed."""
    now = time.time()
    found: list[tuple[float, str, int]] = []  # (last used, path, own bytes)
    drop: list[tuple[str, int]] = []
    for sub in _names(root):
        for name in _names(root / sub):
            path = os.path.join(root, sub, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            own = st.st_size if st.st_nlink == 1 else 0
            if name.startswith(".tmp-"):
                if now - st.st_mtime >= 3600:
                    drop.append((path, own))
            elif now - st.st_mtime >= older_than:
                drop.append((path, own))
            else:
                found.append((st.st_mtime, path, own))
    found.sort()
    total = sum(own for _, _, own in found)
    for item in [f for f in found if f[2]]:  # one that takes no space of its own stays
        if total <= budget:
            break
        found.remove(item)
        drop.append(item[1:])
        total -= item[2]
    removed = freed = 0
    for path, own in drop:
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed += not os.path.basename(path).startswith(".tmp-")
            freed += own
    return [own for _, _, own in found], removed, freed


def _names(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _trim_stash(store: Store, budget: int) -> tuple[list[int], int, int]:
    """Remove the kept work dirs of recipes that are gone (or with no manifest: not kept
    whole), then the least recently kept until the rest fit ``budget`` bytes. Each is taken
    by a rename into tmp/ first, as a run takes one, so a run never gets a half-removed dir
    (the run that wins the rename keeps it). Returns the sizes of those left, how many were
    removed and their bytes."""
    try:
        names = sorted(os.listdir(store.root / STASH))
    except OSError:
        return [], 0, 0
    dirs: list[tuple[float, str, int]] = []  # (when kept, name, bytes)
    drop: list[tuple[str, int]] = []
    for name in names:
        path = store.root / STASH / name
        size = _du(path)
        when, project = _kept_for(path)
        if when is None or (project is not None and not os.path.isfile(project)):
            drop.append((name, size))
        else:
            dirs.append((when, name, size))
    dirs.sort()
    total = sum(size for _, _, size in dirs)
    while dirs and total > budget:
        _, name, size = dirs.pop(0)
        drop.append((name, size))
        total -= size
    removed = freed = 0
    for name, size in drop:
        if _take_and_remove(store, name):
            removed += 1
            freed += size
    return [size for _, _, size in dirs], removed, freed


def _kept_for(path: Path) -> tuple[float | None, str | None]:
    """When a kept dir was kept (its manifest's mtime; None without one) and the recipe file
    it is for (None when its manifest does not say)."""
    manifest = path / STASH_MANIFEST
    try:
        when = os.lstat(manifest).st_mtime
        with open(manifest, "rb") as fh:
            project = json.load(fh).get("project")
    except (OSError, ValueError, AttributeError):
        return None, None
    return when, project if isinstance(project, str) and project else None


def _du(path: Path) -> int:
    """The bytes a directory tree takes (its files' sizes; links and dirs not counted)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total


def _take_and_remove(store: Store, name: str) -> bool:
    taken = Path(tempfile.mkdtemp(prefix=store.tmp_prefix("stash-gc"), dir=store.root / "tmp"))
    try:
        os.rename(store.root / STASH / name, taken)
    except OSError:
        taken.rmdir()
        return False
    shutil.rmtree(taken, ignore_errors=True)
    return True

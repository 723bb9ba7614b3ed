"""Garbage collection of the local store, respecting live leases (running builds)."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crossplan.cache.leases import STASH, flocked, live_leases, sweep_tmp

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


def collect(store: Store, max_size: int, *, grace: float = 0.0) -> GcReport:
    """Drop least recently created entries until blobs fit ``max_size``; then delete
    unreferenced blobs. Blobs no entry ever named are kept while younger than ``grace``
    seconds. All under gc.lock (exclusive; readers register what they use under it shared),
    never touching what another live lease uses: its keys, its blobs, nor any blob younger
    than the oldest live lease (what a build wrote but has not published yet)."""
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
        evicted: set[str] = set()
        for e in list(remaining):
            if sum(live.values()) <= max_size:
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
        report.stashed = _drop_stash(store)
        report.freed = before - store.size()
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


def _drop_stash(store: Store) -> int:
    """Remove the kept work dirs: each is taken by a rename into tmp/ first, as a run takes
    one, so a run never gets a half-removed dir (the run that wins the rename keeps it)."""
    removed = 0
    try:
        names = sorted(os.listdir(store.root / STASH))
    except OSError:
        return 0
    for name in names:
        taken = Path(tempfile.mkdtemp(prefix=store.tmp_prefix("stash-gc"), dir=store.root / "tmp"))
        try:
            os.rename(store.root / STASH / name, taken)
        except OSError:
            taken.rmdir()
            continue
        shutil.rmtree(taken, ignore_errors=True)
        removed += 1
    return removed

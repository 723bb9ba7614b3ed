"""The local Nix-style store: read-only content-addressed blobs plus a diskcache action index.

Layout under the store root::

    blobs/ab/abcdef...   read-only blob files named by their blake3 digest
    index/               diskcache: action key -> output manifest
    records/             diskcache: node id -> key components of its last build (for explain)
    locks/               per-key lock files
    tmp/                 work dirs and blobs being written (renamed into place when complete)

An entry is published only after every blob it names exists, so a crash (even SIGKILL)
never leaves a visible partial entry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache
import filelock

from crossplan.hashing import file_digest

__all__ = ["Entry", "OutputFile", "Store", "default_store_dir"]


def default_store_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("CROSSPLAN_CACHE_DIR"):
        return Path(env["CROSSPLAN_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crossplan"


@dataclass(frozen=True)
class OutputFile:
    """One file of a step's outputs: where it goes (relative), its blob, mode and size."""

    path: str
    digest: str
    mode: int
    size: int
    link: str | None = None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"digest": self.digest, "mode": self.mode, "size": self.size}
        if self.link is not None:
            d["link"] = self.link
        return d


@dataclass(frozen=True)
class Entry:
    """A published action: key -> outputs (+ log blob and metadata)."""

    key: str
    node: str
    files: tuple[OutputFile, ...]
    log: str | None
    seconds: float
    created: float
    meta: Mapping[str, Any]

    def digests(self) -> dict[str, str]:
        return {f.path: f.digest for f in self.files}

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "node": self.node,
            "files": {f.path: f.as_json() for f in self.files},
            "log": self.log,
            "seconds": self.seconds,
            "created": self.created,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Entry:
        files = tuple(
            OutputFile(p, v["digest"], int(v["mode"]), int(v["size"]), v.get("link"))
            for p, v in sorted(d["files"].items())
        )
        return cls(
            d["key"], d["node"], files, d.get("log"), float(d["seconds"]),
            float(d["created"]), d.get("meta", {}),
        )


class CorruptEntry(Exception):
    """A blob behind an entry is missing or does not match its digest."""


class Store:
    """Content-addressed blobs + action index, safe for concurrent processes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for sub in ("blobs", "locks", "tmp", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.index = diskcache.Cache(str(self.root / "index"), eviction_policy="none")
        self.records = diskcache.Cache(str(self.root / "records"), eviction_policy="none")

    def close(self) -> None:
        self.index.close()
        self.records.close()

    # -- blobs ---------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digest[:2] / digest

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def put_file(self, src: Path, *, move: bool = False) -> tuple[str, int]:
        """Add a file's bytes as a blob; returns (digest, size). ``move`` consumes ``src``."""
        size = src.stat().st_size
        digest = file_digest(src, size)
        dest = self.blob_path(digest)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="blob-")
            os.close(fd)
            if move:
                os.replace(src, tmp)
            else:
                shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o444)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        return digest, size

    def put_bytes(self, data: bytes) -> str:
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="bytes-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        digest, _ = self.put_file(Path(tmp), move=True)
        return digest

    def verify_blob(self, digest: str) -> bool:
        p = self.blob_path(digest)
        try:
            return file_digest(p) == digest
        except OSError:
            return False

    def evict_blob(self, digest: str) -> None:
        p = self.blob_path(digest)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, 0o644)
            p.unlink()

    # -- action index ----------------------------------------------------------------------
    def get(self, key: str, *, verify: bool = True) -> Entry | None:
        """The entry for ``key``, or None. With ``verify``, a corrupt or missing blob evicts
        the entry (and the bad blob) and raises CorruptEntry so the caller can warn."""
        raw = self.index.get(key)
        if raw is None:
            return None
        entry = Entry.from_json(raw)
        if verify:
            bad = [f.digest for f in entry.files if not self.verify_blob(f.digest)]
            if bad:
                for d in bad:
                    self.evict_blob(d)
                self.index.delete(key)
                raise CorruptEntry(f"{len(bad)} blob(s) of {entry.node} failed verification")
        return entry

    def publish(self, entry: Entry) -> None:
        """Make an entry visible; every blob must already be in the store."""
        missing = [f.digest for f in entry.files if not self.has_blob(f.digest)]
        if missing:
            raise RuntimeError(f"refusing to publish {entry.key}: missing blobs {missing[:3]}")
        self.index.set(entry.key, entry.as_json())

    def keys(self) -> list[str]:
        return sorted(str(k) for k in self.index.iterkeys())

    def remove(self, key: str) -> bool:
        return bool(self.index.delete(key))

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Per-key inter-process lock: one builder per key at a time."""
        with filelock.FileLock(str(self.root / "locks" / f"{key[:32]}.lock")):
            yield

    # -- materializing -------------------------------------------------------------------
    def materialize(self, entry: Entry, dest: Path) -> None:
        """Copy an entry's outputs into ``dest`` with their recorded modes."""
        for f in entry.files:
            target = dest / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if f.link is not None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                os.symlink(f.link, target)
                continue
            if target.exists():
                os.chmod(target, 0o644)
            shutil.copyfile(self.blob_path(f.digest), target)
            os.chmod(target, f.mode & 0o7777)

    # -- records (for explain) -------------------------------------------------------------
    def record(self, node: str, data: Mapping[str, Any]) -> None:
        self.records.set(node, dict(data))

    def last_record(self, node: str) -> dict[str, Any] | None:
        v = self.records.get(node)
        return dict(v) if v is not None else None

    # -- maintenance -----------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        out = []
        for k in self.keys():
            raw = self.index.get(k)
            if raw is not None:
                out.append(Entry.from_json(raw))
        return out

    def verify(self) -> list[str]:
        """Check every entry; evict corrupt ones; returns the evicted keys."""
        bad = []
        for k in self.keys():
            try:
                self.get(k, verify=True)
            except CorruptEntry:
                bad.append(k)
        return bad

    def size(self) -> int:
        total = 0
        for p in (self.root / "blobs").rglob("*"):
            if p.is_file():
                total += p.stat().st_size
        return total

    def gc(self, max_size: int, *, grace: float = 0.0) -> tuple[int, int]:
        """Drop least recently created entries until blobs fit ``max_size``; then delete
        unreferenced blobs. Blobs no entry ever named are kept while younger than ``grace``
        seconds: they may belong to a build in progress. Returns (entries removed, bytes freed)."""
        before = self.size()
        entries = sorted(self.entries(), key=lambda e: e.created)
        live = self._blob_sizes(entries)
        total = sum(live.values())
        removed = 0
        evicted: set[str] = set()
        while entries and total > max_size:
            e = entries.pop(0)
            evicted |= {f.digest for f in e.files} | ({e.log} if e.log else set())
            self.remove(e.key)
            removed += 1
            live = self._blob_sizes(entries)
            total = sum(live.values())
        self._sweep(set(live), evicted, grace)
        self._clean_tmp()
        return removed, before - self.size()

    def _blob_sizes(self, entries: list[Entry]) -> dict[str, int]:
        live: dict[str, int] = {}
        for e in entries:
            for f in e.files:
                live[f.digest] = f.size
            if e.log:
                live[e.log] = 0
        return live

    def _sweep(self, live: set[str], evicted: set[str], grace: float) -> None:
        now = time.time()
        for p in (self.root / "blobs").glob("*/*"):
            if p.name in live:
                continue
            if p.name in evicted or now - p.stat().st_mtime >= grace:
                os.chmod(p, stat.S_IWUSR | stat.S_IRUSR)
                p.unlink()

    def _clean_tmp(self, older_than: float = 3600.0) -> None:
        now = time.time()
        for p in (self.root / "tmp").iterdir():
            with contextlib.suppress(OSError):
                if now - p.lstat().st_mtime > older_than:
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink()

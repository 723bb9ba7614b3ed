"""The local Nix-style store: read-only content-addressed blobs plus a diskcache action index.

Layout under the store root::

    blobs/ab/abcdef...   read-only blob files named by their blake3 digest
    index/               diskcache: action key -> output manifest
    records/             diskcache: node id -> key components of its last build (for explain)
    locks/               per-key lock files (and gc.lock: gc exclusive, readers shared)
    leases/              one per open store handle: what it uses (see leases.py)
    tmp/                 work dirs and blobs being written (renamed into place when complete),
                         named ``KIND-...@<lease id>@...`` so a dead owner's leftovers are swept
    stash/               steps' work dirs kept for their next run (executors/stash.py; a
                         cache of copies: `plan gc` removes them)

An entry is published only after every blob it names exists, so a crash (even SIGKILL)
never leaves a visible partial entry. Failures of the place the store lives (read-only,
full, no permission, no locking) are EnvironmentProblems naming the store (failures.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3
import diskcache

from crossplan.cache.failures import boundary
from crossplan.cache.leases import LEASES, STASH, Lease, flocked, live_leases, sweep_tmp, tmp_prefix
from crossplan.hashing import file_digest

if TYPE_CHECKING:
    from crossplan.cache.gc import GcReport

__all__ = ["STASH", "BlobMismatch", "Entry", "OutputFile", "Store", "default_store_dir"]


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

    def blobs(self) -> tuple[str, ...]:
        """Every blob the entry names: its files' and its log's."""
        return tuple(f.digest for f in self.files) + ((self.log,) if self.log else ())

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


class BlobMismatch(ValueError):
    """Streamed bytes do not hash to the digest they were expected to have: not stored."""


class Store:
    """Content-addressed blobs + action index, safe for concurrent processes.

    Opening takes a lease (released by close()) and sweeps what dead owners left in tmp/."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = str(self.root / "blobs")
        self._gc_lock = self.root / "locks" / "gc.lock"  # taken (shared) by every look-up
        self.lease: Lease | None = None
        with self._guard("opening the store"):
            for sub in ("blobs", "locks", "tmp", "logs", LEASES):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self.lease = Lease(self.root)
            try:
                sweep_tmp(self.root, live_leases(self.root))
                self.index = diskcache.Cache(str(self.root / "index"), eviction_policy="none")
                self.records = diskcache.Cache(str(self.root / "records"),
                                               eviction_policy="none")
            except BaseException:
                self.lease.release()
                raise

    def tmp_prefix(self, kind: str) -> str:
        """The name prefix for this handle's tmp/ entries (swept once it is gone)."""
        assert self.lease is not None
        return tmp_prefix(kind, self.lease.id)

    def close(self) -> None:
        try:
            with self._guard("closing the store"):
                self.index.close()
                self.records.close()
        finally:
            if self.lease is not None:
                self.lease.release()

    def _guard(self, doing: str) -> contextlib.AbstractContextManager[None]:
        return boundary(self.root, doing)

    def _flock(self, name: str, how: int) -> contextlib.AbstractContextManager[None]:
        return flocked(self._gc_lock if name == "gc.lock" else self.root / "locks" / name, how)

    def tmp_file(self, kind: str) -> Path:
        """A new empty file in tmp/ named for this handle (swept if the process dies)."""
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix=self.tmp_prefix(kind))
        os.close(fd)
        return Path(tmp)

    # -- blobs ---------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digest[:2] / digest

    def _blob(self, digest: str) -> str:
        """blob_path as a string (a cache hit checks every blob: no Path objects per call)."""
        return f"{self._blobs}/{digest[:2]}/{digest}"

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self._blob(digest))

    def put_file(self, src: Path, *, move: bool = False) -> tuple[str, int]:
        """Add a file's bytes as a blob; returns (digest, size). ``move`` consumes ``src``
        (also when the blob was already there)."""
        size = src.stat().st_size
        digest = file_digest(src, size)
        dest = self.blob_path(digest)
        with self._guard("adding a blob"), self._flock("gc.lock", fcntl.LOCK_SH):
            self._register(blobs=(digest,))
            if dest.exists():
                if move:
                    src.unlink()
                return digest, size
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.tmp_file("blob")
            try:
                if move:
                    os.replace(src, tmp)
                else:
                    shutil.copyfile(src, tmp)
                os.chmod(tmp, 0o444)
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, dest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return digest, size

    def put_bytes(self, data: bytes) -> str:
        with self._guard("adding a blob"):
            tmp = self.tmp_file("bytes")
            try:
                tmp.write_bytes(data)
                digest, _ = self.put_file(tmp, move=True)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return digest

    def put_stream(self, chunks: Iterable[bytes], *, expect: str | None = None) -> tuple[str, int]:
        """Add a blob from ``chunks``, hashing (blake3) while writing to tmp/: memory stays
        one chunk whatever the size. Returns (digest, size). Nothing enters blobs/ unless
        every chunk arrived (an exception from iterating ``chunks`` propagates, the partial
        file is deleted) and, with ``expect``, the bytes hash to it (else BlobMismatch)."""
        with self._guard("adding a blob"):
            tmp = self.tmp_file("stream")
            try:
                h = blake3.blake3()
                size = 0
                with open(tmp, "wb") as f:
                    for chunk in chunks:
                        h.update(chunk)
                        f.write(chunk)
                        size += len(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                digest = h.hexdigest()
                if expect is not None and digest != expect:
                    raise BlobMismatch(f"streamed bytes hash to {digest}, expected {expect}")
                dest = self.blob_path(digest)
                with self._flock("gc.lock", fcntl.LOCK_SH):
                    self._register(blobs=(digest,))
                    if not dest.exists():
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        os.chmod(tmp, 0o444)
                        os.replace(tmp, dest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return digest, size

    def verify_blob(self, digest: str) -> bool:
        try:
            return file_digest(self._blob(digest)) == digest
        except OSError:
            return False

    def evict_blob(self, digest: str) -> None:
        p = self.blob_path(digest)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, 0o644)
            p.unlink()

    def _register(self, keys: tuple[str, ...] = (), blobs: tuple[str, ...] = ()) -> None:
        if self.lease is not None:
            self.lease.register(keys, blobs)

    # -- action index ----------------------------------------------------------------------
    def get(self, key: str, *, verify: bool = True) -> Entry | None:
        """The entry for ``key``, or None. With ``verify``, a corrupt or missing blob evicts
        the entry (and the bad blob) and raises CorruptEntry so the caller can warn.
        A found entry and its blobs are leased: gc leaves them while this store is open."""
        with self._guard("reading the index"):
            with self._flock("gc.lock", fcntl.LOCK_SH):
                raw = self.index.get(key)
                if raw is None:
                    return None
                entry = Entry.from_json(raw)
                self._register((key,), entry.blobs())
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
        with self._guard("publishing an entry"), self._flock("gc.lock", fcntl.LOCK_SH):
            self._register((entry.key,), entry.blobs())
            missing = [f.digest for f in entry.files if not self.has_blob(f.digest)]
            if missing:
                raise RuntimeError(f"refusing to publish {entry.key}: missing blobs {missing[:3]}")
            self.index.set(entry.key, entry.as_json())

    def keys(self) -> list[str]:
        with self._guard("listing the index"):
            return sorted(str(k) for k in self.index.iterkeys())

    def remove(self, key: str) -> bool:
        with self._guard("removing an entry"):
            return bool(self.index.delete(key))

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Per-key inter-process lock: one builder per key at a time."""
        with self._guard("locking a key"), self._flock(f"{key[:32]}.lock", fcntl.LOCK_EX):
            yield

    # -- materializing -------------------------------------------------------------------
    def materialize(self, entry: Entry, dest: Path, *, read_only: bool = False) -> None:
        """Copy an entry's outputs into ``dest`` with their recorded modes. ``read_only``:
        files are hard links to the store's blobs where the file system allows (mode 0444,
        the recorded mode not applied), for a reader that deletes ``dest`` when done, never
        writes to it and never hands it to a step."""
        self._register((entry.key,), entry.blobs())
        with self._guard(f"copying outputs of {entry.node} to {dest}"):
            for f in entry.files:
                target = dest / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                if f.link is not None:
                    with contextlib.suppress(FileNotFoundError):
                        target.unlink()
                    os.symlink(f.link, target)
                    continue
                if read_only and not target.exists():
                    try:
                        os.link(self.blob_path(f.digest), target)
                        continue
                    except OSError:  # another file system, or links refused: a copy
                        pass
                if target.exists():
                    os.chmod(target, 0o644)
                shutil.copyfile(self.blob_path(f.digest), target)
                os.chmod(target, f.mode & 0o7777)

    # -- records (for explain) -------------------------------------------------------------
    def record(self, node: str, data: Mapping[str, Any]) -> None:
        with self._guard("recording a build"):
            self.records.set(node, dict(data))

    def recorded_key(self, node: str) -> tuple[str | None, str | None]:
        """(key, root) of ``node``'s record: a cache hit of the same key in the same project
        leaves the record as it is (one read instead of a write per node of a no-op)."""
        with self._guard("reading records"):
            v = self.records.get(node)
        if not isinstance(v, Mapping):
            return None, None
        return v.get("key"), v.get("root")

    def last_record(self, node: str) -> dict[str, Any] | None:
        with self._guard("reading records"):
            v = self.records.get(node)
        return dict(v) if v is not None else None

    # -- maintenance -----------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        out = []
        with self._guard("listing the index"):
            for k in self.keys():
                raw = self.index.get(k)
                if raw is not None:
                    out.append(Entry.from_json(raw))
        return out

    def verify(self, on_warning: Callable[[str], None] | None = None) -> list[str]:
        """Check every entry; evict corrupt ones (telling ``on_warning`` what was wrong);
        returns the evicted keys."""
        bad = []
        for k in self.keys():
            try:
                self.get(k, verify=True)
            except CorruptEntry as exc:
                bad.append(k)
                if on_warning is not None:
                    on_warning(f"{k[:16]}: {exc}; evicted")
        return bad

    def size(self) -> int:
        total = 0
        for p in (self.root / "blobs").rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                if p.is_file():
                    total += p.stat().st_size
        return total

    def gc(self, max_size: int, *, grace: float = 0.0) -> tuple[int, int]:
        """collect(), as (entries removed, bytes freed)."""
        report = self.collect(max_size, grace=grace)
        return report.removed, report.freed

    def collect(self, max_size: int, *, grace: float = 0.0) -> GcReport:
        """gc with a full report: see crossplan.cache.gc.collect."""
        from crossplan.cache.gc import collect

        with self._guard("collecting garbage"):
            return collect(self, max_size, grace=grace)

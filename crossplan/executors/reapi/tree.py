"""REAPI input roots: SHA-256 digests (crossplan's own store and keys stay blake3; the mapping
is recorded in the local store), Directory trees built from (path -> blob) entries, and
toolchain trees scanned once and remembered."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import diskcache

from crossplan_protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

__all__ = ["Blob", "DigestMap", "InputTree", "ToolTree", "digest_of", "scan_tool"]

Digest = re_pb2.Digest


def digest_of(data: bytes) -> re_pb2.Digest:
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


@dataclass(frozen=True)
class Blob:
    """Where a CAS blob's bytes come from when it must be uploaded: a file or bytes."""

    digest: re_pb2.Digest
    path: str | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as f:
            return f.read()


class DigestMap:
    """blake3 -> (sha256, size) of blobs crossplan has sent or fetched, kept in the store
    (``<store>/reapi/digests``) so a file is hashed a second way only once."""

    def __init__(self, root: Path) -> None:
        self.cache = diskcache.Cache(str(root / "reapi" / "digests"))

    def get(self, b3: str) -> re_pb2.Digest | None:
        v = self.cache.get(b3)
        return re_pb2.Digest(hash=v[0], size_bytes=v[1]) if v else None

    def put(self, b3: str, d: re_pb2.Digest) -> None:
        self.cache.set(b3, (d.hash, d.size_bytes))

    def of_file(self, path: str, b3: str | None = None) -> tuple[str, re_pb2.Digest]:
        """(blake3, sha256 digest) of a file, hashing it once for both; with ``b3`` (the
        planned blake3) a remembered sha256 is used and nothing is read."""
        if b3 is not None and (known := self.get(b3)) is not None:
            return b3, known
        h3, h2, size = blake3.blake3(), hashlib.sha256(), 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h3.update(chunk)
                h2.update(chunk)
                size += len(chunk)
        got = h3.hexdigest()
        d = re_pb2.Digest(hash=h2.hexdigest(), size_bytes=size)
        self.put(got, d)
        return got, d

    def close(self) -> None:
        self.cache.close()


@dataclass
class _Dir:
    files: dict[str, re_pb2.FileNode] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, _Dir] = field(default_factory=dict)
    subtrees: dict[str, re_pb2.Digest] = field(default_factory=dict)  # already-built trees


class InputTree:
    """An input root under construction; ``build()`` gives its root digest and every
    Directory blob (REAPI's canonical form: entries sorted by name)."""

    def __init__(self) -> None:
        self.root = _Dir()
        self.blobs: dict[str, Blob] = {}

    def _dir(self, parts: list[str]) -> _Dir:
        d = self.root
        for p in parts:
            d = d.dirs.setdefault(p, _Dir())
        return d

    def add_file(self, path: str, blob: Blob, executable: bool) -> None:
        *parents, name = Path(path).parts
        self._dir(parents).files[name] = re_pb2.FileNode(
            name=name, digest=blob.digest, is_executable=executable)
        self.blobs.setdefault(blob.digest.hash, blob)

    def add_bytes(self, path: str, data: bytes, executable: bool = False) -> None:
        self.add_file(path, Blob(digest_of(data), data=data), executable)

    def add_link(self, path: str, target: str) -> None:
        *parents, name = Path(path).parts
        self._dir(parents).links[name] = target

    def add_dir(self, path: str) -> None:
        self._dir(list(Path(path).parts))

    def add_subtree(self, path: str, tree: ToolTree) -> None:
        *parents, name = Path(path).parts
        self._dir(parents).subtrees[name] = tree.digest
        self.blobs.update(tree.blobs)

    def build(self) -> re_pb2.Digest:
        return self._build(self.root)

    def _build(self, d: _Dir) -> re_pb2.Digest:
        msg = re_pb2.Directory()
        msg.files.extend(d.files[n] for n in sorted(d.files))
        children = {n: self._build(sub) for n, sub in d.dirs.items()} | d.subtrees
        msg.directories.extend(re_pb2.DirectoryNode(name=n, digest=children[n])
                               for n in sorted(children))
        msg.symlinks.extend(re_pb2.SymlinkNode(name=n, target=d.links[n]) for n in sorted(d.links))
        data = msg.SerializeToString(deterministic=True)
        digest = digest_of(data)
        self.blobs[digest.hash] = Blob(digest, data=data)
        return digest


@dataclass(frozen=True)
class ToolTree:
    """A toolchain directory as a CAS tree: its root Directory digest and every blob."""

    digest: re_pb2.Digest
    blobs: dict[str, Blob]


_SCANNED: dict[str, ToolTree] = {}  # this process's scans, by memo key
_SCAN_LOCK = threading.Lock()


def scan_tool(root: str, memo_dir: Path, digests: DigestMap) -> ToolTree:
    """The tree of a toolchain directory (go, zig: self-contained, immutable once installed).
    Remembered in this process and in ``memo_dir`` by path and the directory's
    inode/mtime/size signature (scanned once however many actions use it)."""
    sig = _signature(root)
    key = hashlib.sha256(f"{root}\0{sig}".encode()).hexdigest()[:32]
    with _SCAN_LOCK:
        if key not in _SCANNED:
            _SCANNED[key] = _scan(root, key, memo_dir, digests)
        return _SCANNED[key]


def _scan(root: str, key: str, memo_dir: Path, digests: DigestMap) -> ToolTree:
    memo = memo_dir / f"{key}.json"
    files: list[tuple[str, str, int, bool]] = []  # rel, sha256, size, executable
    links: list[tuple[str, str]] = []
    dirs: list[str] = []
    if memo.is_file():
        data = json.loads(memo.read_text())
        files = [(f[0], f[1], f[2], f[3]) for f in data["files"]]
        links = [(x[0], x[1]) for x in data["links"]]
        dirs = data["dirs"]
    else:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir != ".":
                dirs.append(rel_dir)
            for name in sorted(filenames + [d for d in dirnames
                                            if os.path.islink(os.path.join(dirpath, d))]):
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    links.append((rel, os.readlink(full)))
                elif stat.S_ISREG(st.st_mode):
                    _, d = digests.of_file(full)
                    files.append((rel, d.hash, d.size_bytes, bool(st.st_mode & 0o111)))
        memo_dir.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"root": root, "files": files, "links": links, "dirs": dirs}))
        os.replace(tmp, memo)
    tree = InputTree()
    for rel in dirs:
        tree.add_dir(rel)
    for rel, sha, size, exe in files:
        d = re_pb2.Digest(hash=sha, size_bytes=size)
        tree.add_file(rel, Blob(d, path=os.path.join(root, rel)), exe)
    for rel, target in links:
        tree.add_link(rel, target)
    return ToolTree(tree.build(), tree.blobs)


def _signature(root: str) -> str:
    """Cheap identity of an installed tree: the root's and its top-level entries' stat."""
    parts = []
    for p in [root, *sorted(os.path.join(root, n) for n in os.listdir(root))]:
        st = os.lstat(p)
        parts.append(f"{p}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}")
    return "\n".join(parts)

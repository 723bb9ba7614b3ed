"""Input tree digests: sorted paths + exec bit + blake3 content digest, with a stat memo."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import blake3
import pathspec

from crossplan.hashing import file_digest, hash_bytes
from crossplan.planner.tree import FileDigest, TreeDigest

__all__ = ["FileDigest", "StatMemo", "TreeDigest", "file_digest", "hash_bytes", "tree_digest"]

# sysroots.lock: its packages enter the keys of the steps using them, per architecture
_ALWAYS_IGNORED = (".git/", ".crossplan/", "__pycache__/", "/sysroots.lock")

# A file modified this recently may be modified again within the same mtime tick (coarse
# timestamps: a jiffy on Linux < 6.13, seconds on some filesystems) without its stat
# changing; such "racy" files are hashed but never memoized (like git's racy-clean check).
_RACY_NS = 2_000_000_000


class StatMemo:
    """(path, size, mtime_ns, inode) -> digest, persisted as one JSON file per tree root."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._data: dict[str, dict[str, list[object]]] = {}
        self._dirty: set[str] = set()

    def _file(self, root: Path) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (hash_bytes(str(root).encode())[:32] + ".json")

    def table(self, root: Path) -> dict[str, list[object]]:
        key = str(root)
        if key not in self._data:
            data: dict[str, list[object]] = {}
            f = self._file(root)
            if f is not None and f.exists():
                try:
                    data = json.loads(f.read_text())
                except (OSError, ValueError):
                    data = {}
            self._data[key] = data
        return self._data[key]

    def mark(self, root: Path) -> None:
        self._dirty.add(str(root))

    def save(self) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for key in self._dirty:
            f = self._file(Path(key))
            assert f is not None
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w") as out:
                json.dump(self._data[key], out, separators=(",", ":"))
            os.replace(tmp, f)
        self._dirty.clear()


def _ignore_spec(root: Path, exclude: Iterable[str]) -> pathspec.PathSpec:  # type: ignore[type-arg]
    lines: list[str] = list(_ALWAYS_IGNORED)
    for name in (".gitignore", ".dockerignore"):
        f = root / name
        if f.is_file():
            lines += f.read_text(encoding="utf-8", errors="replace").splitlines()
    lines += list(exclude)
    return pathspec.PathSpec.from_lines("gitignore", lines)


def tree_digest(
    root: Path, *, exclude: Iterable[str] = (), memo: StatMemo | None = None
) -> TreeDigest:
    """Digest every file under ``root`` (a file root digests just that file)."""
    root = root.resolve()
    memo_table = memo.table(root) if memo is not None else {}
    changed = False
    files: list[FileDigest] = []
    if root.is_file():
        st = root.stat()
        files.append(FileDigest(root.name, file_digest(root, st.st_size), _is_exec(st), st.st_size))
    else:
        spec = _ignore_spec(root, exclude)
        racy_after = time.time_ns() - _RACY_NS
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            dirnames[:] = sorted(d for d in dirnames if not spec.match_file(rel_dir + d + "/"))
            for name in filenames:
                rel = rel_dir + name
                if spec.match_file(rel):
                    continue
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(full)
                    files.append(FileDigest(rel, hash_bytes(target.encode()), False, 0, target))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                sig = [st.st_size, st.st_mtime_ns, st.st_ino]
                hit = memo_table.get(rel)
                if hit is not None and hit[:3] == sig:
                    digest = str(hit[3])
                else:
                    digest = file_digest(full, st.st_size)
                    if st.st_mtime_ns < racy_after:
                        memo_table[rel] = [*sig, digest]
                        changed = True
                files.append(FileDigest(rel, digest, _is_exec(st), st.st_size))
    files.sort(key=lambda f: f.path)
    h = blake3.blake3()
    for f in files:
        kind = "l" if f.link is not None else ("x" if f.executable else "-")
        h.update(f"{f.path}\0{kind}\0{f.digest}\n".encode())
    if memo is not None and changed:
        memo.mark(root)
    return TreeDigest(root, h.hexdigest(), tuple(files), single=root.is_file())


def _is_exec(st: os.stat_result) -> bool:
    return bool(st.st_mode & 0o111)

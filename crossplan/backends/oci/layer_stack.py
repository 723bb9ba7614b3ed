"""The final file system of a stack of OCI layer tars, applied per the image spec's changesets."""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Generic, Literal, TypeVar

__all__ = ["OPAQUE", "WHITEOUT", "Entry", "LayerSource", "Stack", "apply_layers",
           "final_entries"]

WHITEOUT = ".wh."  # ".wh.<name>" deletes <name> (and all below it) from LOWER layers
OPAQUE = ".wh..wh..opq"  # hides everything LOWER layers put in its directory

Kind = Literal["file", "dir", "symlink", "hardlink", "other"]
# A layer: its bytes, or a file holding them (tar, or tar+gzip/bzip2/xz; read as a stream).
LayerSource = bytes | os.PathLike[str]
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One path of the final file system and the layer that last wrote it."""

    path: str  # normalized, relative, no leading '/': "usr/lib/libc.so.6"
    kind: Kind
    layer: int  # index (bottom = 0) of the layer that wrote this entry
    size: int = 0  # regular files; a hard link: its target's size when that is in its layer
    mode: int = 0
    link: str = ""  # a symlink's target as written; a hard link's target path (normalized)


@dataclass
class Stack(Generic[T]):
    """The applied stack: every surviving entry, and what ``read`` returned for those of
    them it was asked about (regular files, and hard links sharing their target's read)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    read: dict[str, T] = field(default_factory=dict)
    _children: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def _add(self, entry: Entry) -> None:
        self.entries[entry.path] = entry
        path = entry.path  # link it and its implicit parent directories into the index
        while path:
            kids = self._children.setdefault(posixpath.dirname(path), set())
            if path in kids:
                break
            kids.add(path)
            path = posixpath.dirname(path)

    def _remove(self, path: str) -> None:
        self.entries.pop(path, None)
        self.read.pop(path, None)
        kids = self._children.get(posixpath.dirname(path))
        if kids is not None:
            kids.discard(path)

    def _remove_below(self, path: str, *, lower_than: int | None = None) -> bool:
        """Remove every descendant of ``path`` (only those written by a layer below
        ``lower_than`` when given). True when nothing is left below ``path``."""
        kids = self._children.get(path)
        if not kids:
            self._children.pop(path, None)
            return True
        empty = True
        for child in list(kids):
            child_empty = self._remove_below(child, lower_than=lower_than)
            entry = self.entries.get(child)
            older = entry is None or lower_than is None or entry.layer < lower_than
            if older and child_empty:
                self._remove(child)
            else:
                empty = False
        if empty:
            self._children.pop(path, None)
        return empty

    def _whiteout(self, path: str, layer: int) -> None:
        """``.wh.<name>`` of ``layer``: delete ``path`` and what is below it, lower layers'
        only (what this layer writes, before or after the marker, stays)."""
        empty = self._remove_below(path, lower_than=layer)
        entry = self.entries.get(path)
        if empty and (entry is None or entry.layer < layer):
            self._remove(path)

    def _put(self, entry: Entry) -> None:
        """Write ``entry`` over whatever is there: two directories merge (the new one's
        attributes win); in every other case the old path and all below it go first."""
        old = self.entries.get(entry.path)
        if old is not None and not (old.kind == "dir" and entry.kind == "dir"):
            self._remove_below(entry.path)
            self._remove(entry.path)
        # a lower non-directory where this entry needs a parent directory goes (tar would
        # replace it); symlinked parents stay: callers resolve them within the image
        parent = posixpath.dirname(entry.path)
        while parent:
            above = self.entries.get(parent)
            if above is not None and above.kind not in ("dir", "symlink"):
                self._remove(parent)
            parent = posixpath.dirname(parent)
        self._add(entry)


def _norm(name: str) -> str | None:
    """A member name as a relative path inside the image, or None (the root, an escape)."""
    path = posixpath.normpath(name.lstrip("/"))
    if path == "." or path == ".." or path.startswith("../"):
        return None
    return path


def _kind(member: tarfile.TarInfo) -> Kind:
    if member.isfile():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return "other"


@contextmanager
def _open(source: LayerSource) -> Iterator[tarfile.TarFile]:
    if isinstance(source, bytes):
        with tarfile.open(fileobj=io.BytesIO(source), mode="r|*") as tar:
            yield tar
        return
    with open(source, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
        yield tar


def apply_layers(
    layers: Iterable[LayerSource], read: Callable[[Entry, IO[bytes]], T | None],
) -> Stack[T]:
    """Apply ``layers`` bottom first, streaming each tar once. ``read(entry, stream)`` is
    called for each regular file as it passes; it reads the stream only for the paths it
    wants and returns what to keep for them (None: nothing). Only the results of entries
    that survive the stack are kept."""
    stack: Stack[T] = Stack()
    for index, source in enumerate(layers):
        sizes: dict[str, int] = {}  # regular files of this layer (hard link targets)
        results: dict[str, T] = {}  # read results of this layer's files, by path
        with _open(source) as tar:
            for member in tar:
                path = _norm(member.name)
                if path is None:
                    continue
                parent, base = posixpath.dirname(path), posixpath.basename(path)
                if base == OPAQUE:
                    stack._remove_below(parent, lower_than=index)
                    continue
                if base.startswith(WHITEOUT):
                    gone = base[len(WHITEOUT):]
                    if gone not in ("", ".", ".."):
                        stack._whiteout(posixpath.join(parent, gone), index)
                    continue
                kind = _kind(member)
                link, size = member.linkname, member.size if kind == "file" else 0
                if kind == "hardlink":
                    link = _norm(link) or ""
                    size = sizes.get(link, 0)
                entry = Entry(path, kind, index, size, member.mode, link)
                stack._put(entry)
                sizes.pop(path, None)
                results.pop(path, None)
                if kind == "file":
                    sizes[path] = member.size
                    stream = tar.extractfile(member)
                    got = read(entry, stream) if stream is not None else None
                    if got is not None:
                        results[path] = got
                        stack.read[path] = got
                elif kind == "hardlink" and link in results:
                    stack.read[path] = results[link]
    return stack


def _skip(entry: Entry, stream: IO[bytes]) -> None:
    return None


def final_entries(layers: Iterable[LayerSource]) -> dict[str, Entry]:
    """The final file system's entries (no file is read)."""
    return apply_layers(layers, _skip).entries

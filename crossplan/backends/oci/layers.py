"""Deterministic gzip layer blobs from a list of file, directory and symlink entries."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from crossplan.backends.oci._tar import TarWriter
from crossplan.backends.oci.blobs import Blob, HashedBlobs, SpooledBlobs
from crossplan.backends.oci.deflate import (
    DEFLATE_ENV,
    GZIP_LEVEL,
    layer_encoding,
    new_deflater,
)
from crossplan.backends.oci.descriptor import Descriptor
from crossplan.backends.oci.mediatypes import OCI_LAYER_GZIP
from crossplan.errors import RecipeError, StepFailed

__all__ = [
    "DEFLATE_ENV", "GZIP_LEVEL", "Layer", "LayerEntry", "build_layer", "entries_from_tree",
    "layer_encoding",
]

_CHUNK = 1 << 20  # how much of a source file is read at once (the deflater re-blocks)


@dataclass(frozen=True)
class LayerEntry:
    """One path in a layer: a file (from ``source`` or ``data``), a directory or a symlink."""

    path: str  # absolute path in the image, e.g. "/usr/local/bin/hello"
    source: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    mode: int = 0o644
    type: Literal["file", "dir", "symlink"] = "file"
    linkname: str = ""


@dataclass(frozen=True)
class Layer:
    """A built layer: the gzip blob (in memory, or in the file ``path`` once it outgrew
    ``SPILL``) and the digest of the tar inside it."""

    diff_id: str  # sha256 of the uncompressed tar
    digest: str  # sha256 of the gzip blob
    size: int
    blob: bytes = field(repr=False)  # b"" when spooled to ``path``
    media_type: str = OCI_LAYER_GZIP
    path: Path | None = None

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)

    def as_blob(self) -> Blob:
        if self.path is not None:
            return Blob(self.descriptor, SpooledBlobs({self.digest: self.path}))
        return Blob(self.descriptor, HashedBlobs({self.digest: self.blob}))


# A layer's blob past this size goes to a file (memory stays bounded): no dearer than held,
# since a held blob is written to the layout anyway, and a spooled one is linked there.
SPILL = 8 << 20


class _Output:
    """Where the blob goes as it is compressed: memory, then past ``SPILL`` a new file in
    ``spool`` (with what was held); hashed on the way."""

    def __init__(self, spool: Path | None) -> None:
        self.spool = spool
        self.parts: list[bytes] = []
        self.size = 0
        self.sha = hashlib.sha256()
        self.file: BinaryIO | None = None
        self.path: Path | None = None

    def __call__(self, part: bytes) -> None:
        self.sha.update(part)
        self.size += len(part)
        if self.file is None and self.spool is not None and self.size > SPILL:
            self.spool.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="layer-", dir=self.spool)
            self.file, self.path = os.fdopen(fd, "wb"), Path(name)
            for held in self.parts:
                self.file.write(held)
            self.parts = []
        if self.file is not None:
            self.file.write(part)
        else:
            self.parts.append(part)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            os.chmod(self.path, 0o444)  # type: ignore[arg-type]


def build_layer(entries: Iterable[LayerEntry], *, mtime: int, spool: Path | None = None) -> Layer:
    """Tar + gzip ``entries`` reproducibly: same entries and mtime give the same bytes.

    Entries are sorted by path, missing parent directories are added (0755), owners are
    root with empty names, every mtime is ``mtime`` (SOURCE_DATE_EPOCH). File sources are
    streamed in 1 MiB chunks; only the compressed blob is kept: in memory, or past ``SPILL``
    in a file of ``spool`` (the caller removes it; without ``spool``, in memory whatever
    its size). The gzip header has mtime 0 and no file name; the encoding is fixed
    (``layer_encoding()``).
    """
    members = _plan(entries)
    output = _Output(spool)
    deflater = new_deflater(output)
    tar = TarWriter(deflater.write, mtime=mtime)
    for name, entry in members:
        if entry.type == "file":
            size, chunks = _content(entry)
            tar.add(name, kind="file", mode=entry.mode, size=size, chunks=chunks)
        else:
            tar.add(name, kind=entry.type, mode=entry.mode, linkname=entry.linkname)
    tar.close()
    try:
        _, tar_digest = deflater.finish()
    finally:
        output.close()
    return Layer(
        diff_id="sha256:" + tar_digest,
        digest="sha256:" + output.sha.hexdigest(),
        size=output.size,
        blob=b"".join(output.parts),
        path=output.path,
    )


def entries_from_tree(root: Path, dest: str = "/") -> list[LayerEntry]:
    """Entries for everything under ``root``, placed under ``dest`` in the image.

    Modes are normalized (0755 if any execute bit is set, else 0644) so the umask of
    the machine that produced the files does not change the layer.
    """
    base = "/" + dest.strip("/")
    out: list[LayerEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath, name)
            image_path = "/".join(p for p in (base.rstrip("/"), *rel.parts, name) if p)
            image_path = "/" + image_path.lstrip("/")
            if path.is_symlink():
                out.append(LayerEntry(image_path, type="symlink", linkname=os.readlink(path)))
            elif path.is_dir():
                out.append(LayerEntry(image_path, type="dir", mode=0o755))
            else:
                mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                out.append(LayerEntry(image_path, source=path, mode=mode))
    return out


def _parts(path: str) -> tuple[str, ...]:
    if not path.startswith("/") or "\0" in path:
        raise RecipeError(
            f"layer path '{path}' must be absolute", hint="write it as '/usr/local/bin/app'"
        )
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise RecipeError(f"layer path '{path}' contains '..'", hint="use a normalized path")
    if not parts:
        raise RecipeError("layer path '/' cannot be an entry", hint="name a file or directory")
    return parts


def _check(entry: LayerEntry) -> None:
    if entry.type == "file" and (entry.source is None) == (entry.data is None):
        raise RecipeError(f"layer file '{entry.path}' needs exactly one of source= or data=")
    if entry.type == "symlink" and not entry.linkname:
        raise RecipeError(f"layer symlink '{entry.path}' needs a linkname")
    if entry.type != "file" and (entry.source is not None or entry.data is not None):
        raise RecipeError(f"layer {entry.type} '{entry.path}' cannot have content")


def _plan(entries: Iterable[LayerEntry]) -> list[tuple[str, LayerEntry]]:
    """Validate, dedupe, add parent directories, sort by path components."""
    by_parts: dict[tuple[str, ...], LayerEntry] = {}
    for entry in entries:
        _check(entry)
        parts = _parts(entry.path)
        previous = by_parts.get(parts)
        if previous is not None and previous != entry:
            raise RecipeError(f"layer path '{entry.path}' is given twice with different content")
        by_parts[parts] = entry
    for parts in list(by_parts):
        for i in range(1, len(parts)):
            parent = parts[:i]
            existing = by_parts.get(parent)
            if existing is None:
                by_parts[parent] = LayerEntry("/" + "/".join(parent), type="dir", mode=0o755)
            elif existing.type != "dir":
                raise RecipeError(
                    f"layer path '{existing.path}' is a {existing.type} "
                    f"but '/{'/'.join(parts)}' is inside it"
                )
    return [("/".join(p), by_parts[p]) for p in sorted(by_parts)]


def _content(entry: LayerEntry) -> tuple[int, Iterable[bytes | memoryview]]:
    if entry.data is not None:
        return len(entry.data), (entry.data,)
    assert entry.source is not None
    try:
        size = entry.source.stat().st_size
    except OSError as exc:
        raise StepFailed(
            f"layer file '{entry.path}': cannot read source {entry.source}: {exc.strerror}",
            hint="check that the step producing it ran and wrote it",
        ) from None
    if not entry.source.is_file():
        raise StepFailed(f"layer file '{entry.path}': source {entry.source} is not a file")
    return size, _chunks(entry.source)


def _chunks(path: Path) -> Iterator[memoryview]:
    """The file's bytes, read into one reused buffer: each piece is valid until the next
    is asked for (the tar writer hands it on to the deflater, which copies or consumes it
    at once). A fresh MiB per read would be a fresh MiB of memory each time: on a VM a
    first touch costs ~0.8 ms per MiB, as much as the read."""
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            yield view[:n]

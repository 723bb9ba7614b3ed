"""OCI image layouts: write a directory or a tar atomically, and read one back as a base image."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal, NamedTuple

from crossplan.backends.oci._fsutil import (
    copy_file,
    fsync_write,
    link_or_copy,
    replace_dir,
    temp_dir_beside,
    temp_file_beside,
)
from crossplan.backends.oci._tar import TarWriter
from crossplan.backends.oci.blobs import FileBlobSource, MemoryBlobs, SpooledBlobs
from crossplan.backends.oci.descriptor import Descriptor, DigestMismatch, canonical_json
from crossplan.backends.oci.image import BuiltIndex
from crossplan.backends.oci.kept import KeptLayers
from crossplan.backends.oci.resolve import resolve_platforms
from crossplan.backends.oci.spec import BaseImage
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform

__all__ = [
    "REF_NAME",
    "LayoutRef",
    "parse_layout_ref",
    "read_layout_base",
    "write_archive",
    "write_layout",
]

REF_NAME = "org.opencontainers.image.ref.name"
_OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


class _LayoutFile(NamedTuple):
    """One file of a layout being written."""

    name: str  # its path in the layout
    read: Callable[[], bytes]  # its bytes
    in_memory: bool  # ``read`` costs nothing: they are held already
    # or the file holding them, never read whole (a layout's, a kept or spooled layer)
    on_disk: Callable[[], AbstractContextManager[Path]] | None = None
    ours: bool = False  # that file is the store's own: a work dir may link to it


@dataclass(frozen=True)
class LayoutRef:
    """``oci:DIR[:REF]`` or ``oci-archive:FILE.tar[:REF]`` (the path cannot contain ':')."""

    kind: Literal["oci", "oci-archive"]
    path: Path
    ref: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}" + (f":{self.ref}" if self.ref else "")


def parse_layout_ref(text: str) -> LayoutRef | None:
    """Parse a layout reference; ``None`` when ``text`` is not ``oci:`` or ``oci-archive:``."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("oci", "oci-archive"):
        return None
    path, _, ref = rest.partition(":")
    if not path:
        raise RecipeError(f"'{text}' names no path", hint=f"write it as '{kind}:DIR[:TAG]'")
    return LayoutRef("oci" if kind == "oci" else "oci-archive", Path(path), ref or None)


def write_layout(
    built: BuiltIndex,
    path: Path,
    *,
    ref_name: str | None = None,
    platform_refs: Mapping[Platform, str] | None = None,
    sync: bool = True,
) -> Path:
    """Write an OCI layout directory at ``path``, replacing any previous one atomically.

    ``index.json`` points at the image index, annotated with ``ref_name`` if given;
    ``platform_refs`` adds single-platform names (tools like umoci unpack one manifest).
    ``sync=False``: files are not flushed to disk (a work dir whose files the store moves
    in and flushes itself).
    """
    files = _files(built, ref_name, platform_refs)
    tmp = temp_dir_beside(path)

    def write(f: _LayoutFile) -> None:
        target = tmp / f.name
        if f.on_disk is not None:
            with f.on_disk() as src:
                if f.ours and not sync:  # a work dir the store takes the files of: a link
                    link_or_copy(src, target)  # (never a user's file: the store would
                else:  # make it read-only)
                    copy_file(src, target, sync=sync)
        elif sync:
            fsync_write(target, f.read())
        else:
            target.write_bytes(f.read())

    try:
        for parent in {(tmp / f.name).parent for f in files}:
            parent.mkdir(parents=True, exist_ok=True)
        # What is held in memory (a built image's layers) is verified and written on a few
        # threads (sha256, writes and fsync release the GIL): an image's layers at once
        # rather than one after the other. Blobs read from elsewhere are read one at a
        # time: memory stays one blob.
        held = [f for f in files if f.in_memory]
        with ThreadPoolExecutor(min(4, max(1, len(held))), thread_name_prefix="layout") as pool:
            for future in [pool.submit(write, f) for f in held]:
                future.result()
        for f in files:
            if not f.in_memory:
                write(f)
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def write_archive(
    built: BuiltIndex,
    file: Path,
    *,
    ref_name: str | None = None,
    platform_refs: Mapping[Platform, str] | None = None,
) -> Path:
    """Write the same layout as a deterministic tar (``oci-archive:``), via a temp file + rename."""
    files = _files(built, ref_name, platform_refs)
    tmp = temp_file_beside(file)
    try:
        with tmp.open("wb") as fh:
            tar = TarWriter(fh.write, mtime=0)
            for directory in ("blobs", "blobs/sha256"):
                tar.add(directory, kind="dir", mode=0o755)
            for f in sorted(files, key=lambda f: f.name):
                if f.on_disk is None:
                    data = f.read()
                    tar.add(f.name, kind="file", mode=0o644, size=len(data), chunks=(data,))
                    continue
                with f.on_disk() as src, src.open("rb") as fi:
                    tar.add(f.name, kind="file", mode=0o644, size=os.fstat(fi.fileno()).st_size,
                            chunks=_chunks(fi))
            tar.close()
        tmp.replace(file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return file


def _files(
    built: BuiltIndex, ref_name: str | None, platform_refs: Mapping[Platform, str] | None
) -> list[_LayoutFile]:
    entries = [_annotated(built.descriptor, ref_name)]
    for platform, name in sorted((platform_refs or {}).items()):
        entries.append(_annotated(built.images[platform].descriptor, name))
    top = {"schemaVersion": 2, "mediaType": built.descriptor.media_type, "manifests": entries}
    files = [
        _LayoutFile("oci-layout", lambda: _OCI_LAYOUT, True),
        _LayoutFile("index.json", lambda: canonical_json(top), True),
    ]
    for digest, doc in built.documents().items():
        files.append(_LayoutFile(_blob_path(digest), MemoryBlobs({digest: doc}).reader(digest),
                                 True))
    for digest, blob in sorted(built.blobs.items()):
        source = blob.source
        on_disk = (functools.partial(source.blob_file, digest)
                   if isinstance(source, FileBlobSource) else None)
        files.append(_LayoutFile(_blob_path(digest), blob.read, isinstance(source, MemoryBlobs),
                                 on_disk, isinstance(source, (KeptLayers, SpooledBlobs))))
    return files


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(1 << 20):
        yield chunk


def _check(f: IO[bytes], out: IO[bytes] | None, digest: str, what: str) -> None:
    """Read ``f`` to its end (copied to ``out`` if given): DigestMismatch unless it hashes
    to ``digest``."""
    h = hashlib.sha256()
    for chunk in _chunks(f):  # type: ignore[arg-type]
        h.update(chunk)
        if out is not None:
            out.write(chunk)
    if "sha256:" + h.hexdigest() != digest:
        raise DigestMismatch(f"{what}: content has digest sha256:{h.hexdigest()}, expected "
                             f"{digest}", hint="the layout is corrupt or was modified")


def _annotated(desc: Descriptor, ref_name: str | None) -> dict[str, object]:
    doc = desc.to_json()
    if ref_name:
        doc["annotations"] = {REF_NAME: ref_name}
    return doc


def _blob_path(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


class _LayoutBlobs:
    """Blobs of a layout directory or archive, read on demand."""

    def __init__(self, ref: LayoutRef) -> None:
        self.ref = ref

    def _read(self, name: str) -> bytes:
        try:
            if self.ref.kind == "oci":
                return (self.ref.path / name).read_bytes()
            with tarfile.open(self.ref.path) as tar:
                for member in tar:
                    if member.name.removeprefix("./") == name:
                        fh = tar.extractfile(member)
                        if fh is not None:
                            return fh.read()
                raise FileNotFoundError(name)
        except (OSError, tarfile.TarError) as exc:
            raise EnvironmentProblem(
                f"cannot read {name} from {self.ref.kind}:{self.ref.path}: {exc}",
                hint="is it a complete OCI layout (oci-layout, index.json, blobs/)?",
            ) from None

    def read_blob(self, digest: str) -> bytes:
        return self._read(_blob_path(digest))

    @contextmanager
    def blob_file(self, digest: str) -> Iterator[Path]:
        """The blob as a file, checked against ``digest`` as it is read (a push or an export
        streams it, never holds it whole): the directory's own file, or spooled out of the
        archive into a temporary one."""
        name = _blob_path(digest)
        if self.ref.kind == "oci":
            self._checked(name, digest, None)
            yield self.ref.path / name
            return
        with tempfile.TemporaryDirectory(prefix="crossplan-blob-") as tmp:
            self._checked(name, digest, Path(tmp) / "blob")
            yield Path(tmp) / "blob"

    def _checked(self, name: str, digest: str, spool: Path | None) -> None:
        """Read ``name`` through (into ``spool`` if given) and check it hashes to ``digest``."""
        where = f"{name} of {self.ref.kind}:{self.ref.path}"
        try:
            if spool is None:
                with (self.ref.path / name).open("rb") as f:
                    _check(f, None, digest, where)
                return
            with tarfile.open(self.ref.path) as tar:
                member = next((m for m in tar if m.name.removeprefix("./") == name), None)
                fh = tar.extractfile(member) if member is not None else None
                if fh is None:
                    raise FileNotFoundError(name)
                with spool.open("wb") as out:
                    _check(fh, out, digest, where)
        except (OSError, tarfile.TarError) as exc:
            raise EnvironmentProblem(
                f"cannot read {where}: {exc}",
                hint="is it a complete OCI layout (oci-layout, index.json, blobs/)?",
            ) from None

    def read_manifest(self, digest: str) -> bytes:
        return self._read(_blob_path(digest))

    def top(self) -> Descriptor:
        every = json.loads(self._read("index.json")).get("manifests", [])
        names = sorted({n for e in every if (n := (e.get("annotations") or {}).get(REF_NAME))})
        entries = every
        if self.ref.ref is not None:
            entries = [
                e for e in every if (e.get("annotations") or {}).get(REF_NAME) == self.ref.ref
            ]
        if len(entries) != 1:
            raise RecipeError(
                f"{self.ref}: expected one image, found {len(entries)}",
                hint="name one with ':REF'" + (f" (refs: {', '.join(names)})" if names else ""),
            )
        return Descriptor.from_json(entries[0])


def read_layout_base(
    ref: LayoutRef | str, platforms: Iterable[Platform]
) -> dict[Platform, BaseImage]:
    """Load a layout (``oci:`` or ``oci-archive:``) as a base image for each platform."""
    parsed = parse_layout_ref(ref) if isinstance(ref, str) else ref
    if parsed is None:
        raise RecipeError(f"'{ref}' is not an oci: or oci-archive: reference")
    source = _LayoutBlobs(parsed)
    top = source.top()
    name = f"{parsed.kind}:{parsed.path}"
    return resolve_platforms(
        source.read_manifest(top.digest),
        top.digest,
        list(platforms),
        source=source,
        name=name,
        pinned=f"{name}@{top.digest}",
    )

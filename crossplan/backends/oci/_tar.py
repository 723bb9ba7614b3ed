"""A streaming tar writer with fixed header fields (uid/gid 0, no names, one mtime, no pax)."""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterable

__all__ = ["TarWriter"]

BLOCK = 512
_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}


class TarWriter:
    """Writes members to ``write`` one block at a time; never holds a member's data.

    Headers are USTAR; a member whose name or link target does not fit USTAR gets a
    PAX header instead (the only case where PAX appears). The archive ends with two
    zero blocks and no record padding, like Go's archive/tar.
    """

    def __init__(self, write: Callable[[bytes | memoryview], object], *, mtime: int) -> None:
        self._write = write
        self._mtime = mtime

    def add(
        self,
        name: str,
        *,
        kind: str,
        mode: int,
        size: int = 0,
        linkname: str = "",
        chunks: Iterable[bytes | memoryview] = (),
    ) -> None:
        info = tarfile.TarInfo(name)
        info.type = _TYPES[kind]
        info.mode = 0o777 if kind == "symlink" else mode & 0o7777
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = self._mtime
        info.size = size if kind == "file" else 0
        info.linkname = linkname
        try:
            header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        except ValueError:  # name or linkname too long for USTAR
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self._write(header)
        if kind != "file":
            return
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                break
            self._write(chunk)
        if written != size:
            raise OSError(f"{name}: expected {size} bytes, got {written} (file changed?)")
        if size % BLOCK:
            self._write(b"\0" * (BLOCK - size % BLOCK))

    def close(self) -> None:
        self._write(b"\0" * (2 * BLOCK))

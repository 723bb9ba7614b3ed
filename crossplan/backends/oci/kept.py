"""Base image layers kept in the store by digest (``layers/``): an image rebuilt on the same
base reads them from disk, not from the registry again. Streamed in (memory stays one
chunk), kept only once the registry's bytes hash to the digest, hashed again when used."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

__all__ = ["KeptLayers", "StreamSource"]

_HEX = re.compile(r"[0-9a-f]{64}")


class StreamSource(Protocol):
    """Where layers come from when they are not kept (a registry repository)."""

    def read_blob(self, digest: str) -> bytes: ...

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        """The blob's bytes as they arrive; raises (from the iteration) when they do not
        hash to ``digest``."""
        ...

    def blob_file(self, digest: str) -> contextlib.AbstractContextManager[Path]: ...


class KeptLayers:
    """``source``'s blobs kept under ``root`` (``root/<2 hex>/<sha256 hex>``, read-only).
    A kept file that does not hash to its name is dropped and fetched again; a store that
    cannot be written only means streaming from the source as before."""

    def __init__(self, source: StreamSource, root: Path) -> None:
        self.source = source
        self.root = root
        self.fetched = 0  # how many layers came from the source (not from disk)
        # checked (or fetched) by this instance, one build's: it reads a layer twice (the
        # binary check, the layout), hashed the first time only
        self._checked: set[str] = set()

    def read_blob(self, digest: str) -> bytes:
        with self.blob_file(digest) as path:
            return path.read_bytes()

    @contextmanager
    def blob_file(self, digest: str) -> Iterator[Path]:
        """The blob as a file (checked against ``digest``): the kept one, else fetched and
        kept first. Also refreshes its mtime (gc drops layers unused for a while)."""
        path = self.kept(digest)
        if path is None:
            path = self._fetch(digest)
        if path is None:  # not keepable here (bad digest, unwritable store)
            with self.source.blob_file(digest) as spooled:
                yield spooled
            return
        yield path

    def kept(self, digest: str) -> Path | None:
        """The kept file of ``digest`` if there is one that still hashes to it."""
        path = self._path(digest)
        if path is None:
            return None
        if digest in self._checked and path.is_file():
            return path
        try:
            with path.open("rb") as f:
                ok = hashlib.file_digest(f, "sha256").hexdigest() == path.name
            if not ok:
                path.unlink()
                return None
        except OSError:
            return None
        with contextlib.suppress(OSError):  # (a read-only store: still a good copy)
            os.utime(path)
        self._checked.add(digest)
        return path

    def _fetch(self, digest: str) -> Path | None:
        path = self._path(digest)
        if path is None:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        except OSError:
            return None
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in self.source.iter_blob(digest):  # checked by the last chunk
                    f.write(chunk)
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        except OSError:
            return None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.fetched += 1
        self._checked.add(digest)
        return path

    def _path(self, digest: str) -> Path | None:
        algo, _, hexed = digest.partition(":")
        if algo != "sha256" or not _HEX.fullmatch(hexed):
            return None
        return self.root / hexed[:2] / hexed


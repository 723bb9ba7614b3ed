"""Registry documents (manifests, image configs) kept on disk by digest: what a digest names
never changes, so a plan asks the registry only what a tag names now, not the index,
manifests and configs behind it again. Checked against the digest on every read."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from crossplan.backends.oci._fsutil import write_whole
from crossplan.backends.oci.resolve import ManifestSource

__all__ = ["DOCS_LIMIT", "CachedDocs"]

DOCS_LIMIT = 4 << 20  # a manifest or config is a few KiB; larger blobs are never kept here
_HEX = re.compile(r"[0-9a-f]{64}")


class CachedDocs:
    """``source``'s manifests and the blobs read through it (configs), kept under ``root``
    (``root/<2 hex>/<sha256 hex>``). A kept file that does not hash to its name is fetched
    again; a store that cannot be written only means asking the registry next time."""

    def __init__(self, source: ManifestSource, root: Path) -> None:
        self.source = source
        self.root = root
        self.fetched = 0  # how many documents came from the source (not from disk)

    def read_manifest(self, digest: str) -> bytes:
        return self._read(digest, self.source.read_manifest)

    def read_blob(self, digest: str) -> bytes:
        return self._read(digest, self.source.read_blob)

    def kept(self, digest: str) -> bytes | None:
        """The document ``digest`` names, if it is kept here (and still hashes to it)."""
        path = self._path(digest)
        if path is None:
            return None
        with contextlib.suppress(OSError):
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == path.name:
                return data
        return None

    def keep(self, digest: str, data: bytes) -> None:
        """Keep ``data`` if it is what ``digest`` names (and small: a document)."""
        path = self._path(digest)
        if path is not None and len(data) <= DOCS_LIMIT and \
                hashlib.sha256(data).hexdigest() == path.name:
            with contextlib.suppress(OSError):  # not kept: asked again next time
                write_whole(path, data)

    def _path(self, digest: str) -> Path | None:
        algo, _, hexed = digest.partition(":")
        if algo != "sha256" or not _HEX.fullmatch(hexed):
            return None  # not kept: the caller's digest check reports it
        return self.root / hexed[:2] / hexed

    def _read(self, digest: str, fetch: Callable[[str], bytes]) -> bytes:
        data = self.kept(digest)
        if data is None:
            data = fetch(digest)
            self.fetched += 1
            self.keep(digest, data)
        return data

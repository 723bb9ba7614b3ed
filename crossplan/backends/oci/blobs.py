"""Where blob bytes come from: a small read protocol, an in-memory store, and origin hints."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from crossplan.backends.oci.descriptor import Descriptor, verify_digest
from crossplan.errors import EnvironmentProblem

__all__ = ["Blob", "BlobSource", "FileBlobSource", "HashedBlobs", "MemoryBlobs", "Origin",
           "SpooledBlobs"]


class BlobSource(Protocol):
    """Anything that can hand out a blob's bytes by digest (memory, a layout, a registry)."""

    def read_blob(self, digest: str) -> bytes: ...


@runtime_checkable
class FileBlobSource(BlobSource, Protocol):
    """A source that can hand a blob over as a file, so a push streams it from disk
    instead of holding it in memory (e.g. a registry: the layer is spooled, verified)."""

    def blob_file(self, digest: str) -> AbstractContextManager[Path]:
        """A file holding exactly the blob's bytes (verified), for the ``with`` block."""
        ...


@dataclass(frozen=True)
class Origin:
    """A registry repository already holding a blob: lets a push mount instead of upload."""

    registry: str
    repository: str


@dataclass(frozen=True)
class MemoryBlobs:
    """Blobs held in memory, keyed by digest."""

    blobs: Mapping[str, bytes] = field(default_factory=dict)

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blobs[digest]
        except KeyError:
            raise EnvironmentProblem(f"blob {digest} is not in memory") from None

    def reader(self, digest: str) -> Callable[[], bytes]:
        """A zero-argument function returning the blob."""
        return functools.partial(self.read_blob, digest)


@dataclass(frozen=True)
class HashedBlobs(MemoryBlobs):
    """Blobs held in memory whose digests were computed from these very bytes by this
    process (a layer just compressed): ``Blob.read`` does not hash them a second time."""


class SpooledBlobs:
    """Blobs this process wrote to files of its own as it hashed them (a layer too large to
    hold in memory): handed over as those files, which a work dir may link to."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self._paths = paths

    def read_blob(self, digest: str) -> bytes:
        return self._paths[digest].read_bytes()

    @contextmanager
    def blob_file(self, digest: str) -> Iterator[Path]:
        yield self._paths[digest]


@dataclass(frozen=True)
class Blob:
    """A descriptor plus a lazy way to get its bytes; ``read()`` always verifies the digest."""

    descriptor: Descriptor
    source: BlobSource = field(compare=False)
    origin: Origin | None = field(default=None, compare=False)

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    def read(self) -> bytes:
        data = self.source.read_blob(self.descriptor.digest)
        if isinstance(self.source, HashedBlobs):
            return data
        return verify_digest(data, self.descriptor.digest, what=f"blob {self.descriptor.digest}")

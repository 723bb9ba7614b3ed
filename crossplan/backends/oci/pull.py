"""Read a base image from a registry: resolve index -> manifest per platform, blobs on demand."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from crossplan.backends.oci.blobs import Origin
from crossplan.backends.oci.descriptor import sha256_digest
from crossplan.backends.oci.docs import CachedDocs
from crossplan.backends.oci.kept import KeptLayers
from crossplan.backends.oci.reference import Reference
from crossplan.backends.oci.registry import RegistryClient
from crossplan.backends.oci.resolve import resolve_platforms
from crossplan.backends.oci.spec import BaseImage
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform

__all__ = ["RegistryBlobs", "pull_base"]


class RegistryBlobs:
    """Manifests and blobs of one repository, fetched when read and verified against digests.

    Connections are closed after each read (the client reconnects on the next one), so a
    base image can be kept around without holding sockets open.
    """

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.client.get_blob(self.repository, digest)
        finally:
            self.client.close()

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        """The blob as it arrives (its sha256 checked after the last chunk)."""
        try:
            yield from self.client.iter_blob(self.repository, digest)
        finally:
            self.client.close()

    @contextmanager
    def blob_file(self, digest: str) -> Iterator[Path]:
        """The blob streamed into a temporary file (sha256 checked before it is handed
        over), so pushing it to another registry never holds it in memory."""
        with tempfile.TemporaryDirectory(prefix="crossplan-blob-") as tmp:
            path = Path(tmp) / "blob"
            try:
                with path.open("wb") as f:
                    for chunk in self.client.iter_blob(self.repository, digest):
                        f.write(chunk)
            finally:
                self.client.close()
            yield path

    def read_manifest(self, digest: str) -> bytes:
        try:
            found = self.client.get_manifest(self.repository, digest)
        finally:
            self.client.close()
        if found is None:
            raise EnvironmentProblem(
                f"manifest {digest} vanished from {self.client.registry}/{self.repository}",
                hint="the base image was deleted or re-pushed; pin a digest that exists",
            )
        return found[0]


def pull_base(
    ref: Reference | str,
    platforms: Iterable[Platform],
    *,
    client: RegistryClient | None = None,
    insecure: bool = False,
    transport: httpx.BaseTransport | None = None,
    docs: Path | None = None,
    layers: Path | None = None,
) -> dict[Platform, BaseImage]:
    """Resolve ``ref`` for each platform: reads the index, manifests and configs now,
    layers later (only if a layout write or a push to another registry needs them).
    ``docs``: where manifests and configs are kept by digest (docs.py): then only what a
    tag names is asked of the registry (nothing for a ref pinned by digest). ``layers``:
    where layers are kept by digest once read (kept.py).

    Every ``BaseImage.pinned`` is ``registry/repo@<digest of what ref named>``.
    """
    parsed = Reference.parse(ref) if isinstance(ref, str) else ref
    reg = client or RegistryClient(parsed.registry, insecure=insecure, transport=transport)
    blobs = RegistryBlobs(reg, parsed.repository)
    cached = CachedDocs(blobs, docs) if docs is not None else None
    top = cached.kept(parsed.digest) if cached is not None and parsed.digest else None
    if top is None:
        try:
            found = reg.get_manifest(parsed.repository, parsed.ref)
        finally:
            reg.close()
        if found is None:
            raise RecipeError(
                f"base image {parsed} not found",
                hint=f"check the name and tag: `skopeo inspect docker://{parsed}`",
            )
        top = found[0]
    top_digest = sha256_digest(top)  # computed, never taken from a header
    if cached is not None:
        cached.keep(top_digest, top)
    return resolve_platforms(
        top,
        top_digest,
        list(platforms),
        source=blobs,
        docs=cached,
        layer_source=KeptLayers(blobs, layers) if layers is not None else None,
        name=str(parsed),
        pinned=f"{parsed.name}@{top_digest}",
        origin=Origin(parsed.registry, parsed.repository),
    )

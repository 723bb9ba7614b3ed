"""Push a built index to a registry: blobs, then manifests by digest, then the index, tags last."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import httpx

from crossplan.backends.oci.blobs import Blob, FileBlobSource
from crossplan.backends.oci.descriptor import sha256_digest
from crossplan.backends.oci.image import BuiltIndex
from crossplan.backends.oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from crossplan.backends.oci.reference import Reference
from crossplan.backends.oci.registry import RegistryClient, file_opener
from crossplan.platforms import Platform

__all__ = ["OnPushProgress", "PushResult", "arch_tag_names", "push_index"]

OnPushProgress = Callable[[int, int, int], None]
"""(blobs done, blobs in all, bytes uploaded so far): called after each blob."""


@dataclass(frozen=True)
class PushResult:
    """What a push did. ``up_to_date`` means every tag already named this index: no writes."""

    repository: str
    index_digest: str
    manifests: Mapping[Platform, str]
    tags: tuple[str, ...]
    up_to_date: bool = False
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    manifests_uploaded: int = 0
    manifests_skipped: int = 0
    tags_written: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        head = f"{self.repository}@{self.index_digest}"
        if self.up_to_date:
            return f"{head}: up to date ({', '.join(self.tags)})"
        return (
            f"{head}: blobs {self.blobs_uploaded} uploaded, {self.blobs_mounted} mounted, "
            f"{self.blobs_skipped} already there; manifests {self.manifests_uploaded} uploaded, "
            f"{self.manifests_skipped} already there; tags written: "
            + (", ".join(self.tags_written) or "none")
        )


def arch_tag_names(tags: Sequence[str], platforms: Sequence[Platform]) -> dict[Platform, list[str]]:
    """``1.0`` -> ``1.0-amd64``, ``1.0-arm64``, ``1.0-armv7`` (buildx TARGETARCH+VARIANT)."""
    return {p: [f"{t}-{p.arch_variant}" for t in tags] for p in platforms}


def push_index(
    built: BuiltIndex,
    target: Reference | str,
    *,
    tags: Sequence[str] = (),
    arch_tags: Mapping[Platform, Sequence[str]] | bool = False,
    mount_from: Sequence[str] = (),
    client: RegistryClient | None = None,
    insecure: bool = False,
    transport: httpx.BaseTransport | None = None,
    on_progress: OnPushProgress | None = None,
) -> PushResult:
    """Push ``built`` to ``target``'s repository and point ``tags`` (plus its own tag) at it.

    Order makes an interrupted push harmless: missing blobs (HEAD first; mounted from
    ``mount_from`` repos or the blob's origin when on the same registry), then each
    platform manifest by digest, then the index by digest, and only then the tags. A
    tag therefore never names an incomplete index; rerunning finishes the job.
    ``on_progress`` hears of each blob as it is done (uploaded, mounted or already there).
    """
    ref = Reference.parse(target) if isinstance(target, str) else target
    all_tags = tuple(dict.fromkeys([*([ref.tag] if ref.tag else []), *tags]))
    per_arch = arch_tag_names(all_tags, list(built.images)) if arch_tags is True else arch_tags
    wanted: dict[str, tuple[bytes, str]] = {t: (built.index, OCI_INDEX) for t in all_tags}
    for platform, names in (per_arch or {}).items():
        for name in names:
            wanted[name] = (built.images[platform].manifest, OCI_MANIFEST)
    own = client is None
    reg = client or RegistryClient(ref.registry, insecure=insecure, transport=transport)
    try:
        return _Push(built, ref, reg, mount_from, on_progress).run(wanted, all_tags)
    finally:
        if own:
            reg.close()


class _Push:
    def __init__(
        self, built: BuiltIndex, ref: Reference, reg: RegistryClient, mount_from: Sequence[str],
        on_progress: OnPushProgress | None = None,
    ) -> None:
        self.built, self.ref, self.reg, self.repo = built, ref, reg, ref.repository
        self.mount_from = mount_from
        self.on_progress = on_progress
        self.sent = 0  # bytes uploaded
        self.counts = dict.fromkeys(("uploaded", "mounted", "skipped", "m_up", "m_skip"), 0)

    def run(self, wanted: dict[str, tuple[bytes, str]], tags: tuple[str, ...]) -> PushResult:
        stale = [t for t, (data, _) in wanted.items() if self._current(t) != sha256_digest(data)]
        result = PushResult(self.ref.name, self.built.digest, self.built.manifests, tags)
        if wanted and not stale:
            return replace(result, up_to_date=True)
        blobs = sorted(self.built.blobs.items())
        for done, (_, blob) in enumerate(blobs, 1):
            self._blob(blob)
            if self.on_progress is not None:
                self.on_progress(done, len(blobs), self.sent)
        for image in self.built.images.values():
            self._manifest(image.digest, image.manifest, OCI_MANIFEST)
        self._manifest(self.built.digest, self.built.index, OCI_INDEX)
        for tag in stale:
            data, media_type = wanted[tag]
            self.reg.put_manifest(self.repo, tag, data, media_type)
        c = self.counts
        return replace(
            result,
            blobs_uploaded=c["uploaded"],
            blobs_mounted=c["mounted"],
            blobs_skipped=c["skipped"],
            manifests_uploaded=c["m_up"],
            manifests_skipped=c["m_skip"],
            tags_written=tuple(stale),
        )

    def _current(self, tag: str) -> str | None:
        found = self.reg.get_manifest(self.repo, tag)
        return sha256_digest(found[0]) if found else None  # hash the bytes; ignore headers

    def _blob(self, blob: Blob) -> None:
        if self.reg.has_blob(self.repo, blob.digest):
            self.counts["skipped"] += 1
            return
        sources = list(self.mount_from)
        if blob.origin and blob.origin.registry == self.reg.registry:
            sources.insert(0, blob.origin.repository)
        for source in dict.fromkeys(s for s in sources if s != self.repo):
            if self.reg.mount_blob(self.repo, blob.digest, source):
                self.counts["mounted"] += 1
                return
        if isinstance(blob.source, FileBlobSource):  # streamed from disk; the registry
            with blob.source.blob_file(blob.digest) as path:  # checks the digest
                size = path.stat().st_size
                self.reg.upload_blob_from(self.repo, blob.digest, size, file_opener(path))
        else:
            data = blob.read()
            self.reg.upload_blob(self.repo, blob.digest, data)
            size = len(data)
        self.counts["uploaded"] += 1
        self.sent += size

    def _manifest(self, digest: str, data: bytes, media_type: str) -> None:
        if self.reg.has_manifest(self.repo, digest):
            self.counts["m_skip"] += 1
            return
        self.reg.put_manifest(self.repo, digest, data, media_type)
        self.counts["m_up"] += 1

"""What each architecture of an image costs: sizes, layers and the steps that made them.

``read_image(source)`` walks an index (or a single manifest): per platform the manifest,
its config (``history[].created_by`` says which step made a layer: ``COPY --from=<step>``)
and its layers. Compressed sizes are the manifest's layer sizes (what a pull downloads);
uncompressed sizes need the layer bytes, so blobs are fetched, gunzipped while counting,
and the size kept per digest in memory (``SizeCache``). ``compare`` gives the delta
against another image.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from crossplan.backends.oci.descriptor import platform_from_json
from crossplan.backends.oci.mediatypes import INDEX_TYPES
from crossplan.release.source import ImageSource

__all__ = [
    "Attached",
    "ImageReport",
    "LayerReport",
    "PlatformDelta",
    "PlatformReport",
    "SizeCache",
    "compare",
    "gunzipped",
    "read_image",
]

_FROM = re.compile(r"--from=([\w.-]+)")
_OUT = re.compile(r"\bout/[^/\s]+/([\w.-]+)/")  # buildx copy-only stages: out/<arch>/<step>/
_CREATED = "org.opencontainers.image.created"
_CHUNK = 1 << 20


def gunzipped(data: bytes) -> tuple[int, str]:
    """(size, sha256 digest) of a gzip stream's content, decompressed in chunks; handles
    multi-member streams (``cat a.gz b.gz``) and trailing zero padding."""
    size, digest = 0, hashlib.sha256()
    pos, n = 0, len(data)
    while pos < n:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while pos < n and not d.eof:
            piece = data[pos:pos + _CHUNK]
            out = d.decompress(piece)
            pos += len(piece) - len(d.unused_data)
            size += len(out)
            digest.update(out)
        tail = d.flush()
        size += len(tail)
        digest.update(tail)
        if not d.eof or not data[pos:].strip(b"\0"):
            break
    return size, "sha256:" + digest.hexdigest()


class SizeCache:
    """Uncompressed size (and diff_id) per layer digest, so a blob is fetched only once."""

    def __init__(self) -> None:
        self._sizes: dict[str, tuple[int, str] | None] = {}

    def get(self, source: ImageSource, digest: str, media_type: str, size: int
            ) -> tuple[int, str] | None:
        if digest not in self._sizes:
            if media_type.endswith(("+gzip", ".tar.gzip")):
                self._sizes[digest] = gunzipped(source.blob(digest))
            elif media_type.endswith((".tar", "layer.v1.tar")):
                self._sizes[digest] = (size, digest)
            else:  # zstd and foreign layers: unknown
                self._sizes[digest] = None
        return self._sizes[digest]


_DEFAULT_CACHE = SizeCache()


@dataclass(frozen=True)
class LayerReport:
    digest: str
    size: int  # compressed: the manifest's descriptor size
    uncompressed: int | None
    media_type: str
    created_by: str
    step: str | None  # the recipe step that made it; None for base/unknown layers
    shared: bool = False  # the same blob is in another platform's image

    def as_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "uncompressed": self.uncompressed,
                "media_type": self.media_type, "created_by": self.created_by,
                "step": self.step, "shared": self.shared}


@dataclass(frozen=True)
class Attached:
    """An artifact attached to a platform manifest (an OCI referrer)."""

    kind: str  # sbom | provenance | signature | other (crossplan's annotation, else guessed)
    artifact_type: str
    digest: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "artifact_type": self.artifact_type, "digest": self.digest}


def _kind(desc: dict[str, Any]) -> str:
    ann = desc.get("annotations") or {}
    if ann.get("dev.crossplan.attestation"):
        return str(ann["dev.crossplan.attestation"])
    art = str(desc.get("artifactType", ""))
    if "spdx" in art or "cyclonedx" in art:
        return "sbom"
    if "in-toto" in art or "provenance" in art:
        return "provenance"
    return "signature" if "sig" in art else "other"


@dataclass(frozen=True)
class PlatformReport:
    platform: str
    digest: str  # the platform manifest's digest
    config_size: int
    layers: tuple[LayerReport, ...]
    attached: tuple[Attached, ...] = ()

    @property
    def compressed(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def uncompressed(self) -> int | None:
        sizes = [layer.uncompressed for layer in self.layers]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)

    def as_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "digest": self.digest,
                "compressed": self.compressed, "uncompressed": self.uncompressed,
                "config_size": self.config_size,
                "layers": [layer.as_json() for layer in self.layers],
                "attached": [a.as_json() for a in self.attached]}


@dataclass(frozen=True)
class PlatformDelta:
    platform: str
    status: str  # changed | unchanged | added | removed
    compressed: int
    uncompressed: int | None
    added: tuple[str, ...] = ()  # layer digests only in the new image
    removed: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "status": self.status, "compressed": self.compressed,
                "uncompressed": self.uncompressed, "added_layers": list(self.added),
                "removed_layers": list(self.removed)}


@dataclass(frozen=True)
class ImageReport:
    reference: str
    digest: str
    media_type: str
    created: str | None
    platforms: tuple[PlatformReport, ...]
    against: ImageReport | None = None
    delta: tuple[PlatformDelta, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def shared_layers(self) -> tuple[str, ...]:
        seen = [layer.digest for p in self.platforms for layer in p.layers if layer.shared]
        return tuple(dict.fromkeys(seen))

    def platform(self, name: str) -> PlatformReport | None:
        return next((p for p in self.platforms if p.platform == name), None)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reference": self.reference, "digest": self.digest, "media_type": self.media_type,
            "created": self.created, "platforms": [p.as_json() for p in self.platforms],
            "shared_layers": list(self.shared_layers), "against": None, "delta": [],
            "warnings": list(self.warnings),
        }
        if self.against is not None:
            out["against"] = {"reference": self.against.reference, "digest": self.against.digest,
                              "platforms": [p.as_json() for p in self.against.platforms]}
            out["delta"] = [d.as_json() for d in self.delta]
        return out


def _step_of(created_by: str, steps: Collection[str]) -> str | None:
    for pattern in (_FROM, _OUT):
        m = pattern.search(created_by)
        if m and (not steps or m.group(1) in steps):
            return m.group(1)
    return None


class _Reader:
    def __init__(self, source: ImageSource, steps: Collection[str], cache: SizeCache) -> None:
        self.source, self.steps, self.cache = source, steps, cache
        self.warnings: list[str] = []

    def image(self, manifest: bytes, digest: str, platform: str | None) -> PlatformReport | None:
        doc = json.loads(manifest)
        config_desc = doc.get("config") or {}
        config = json.loads(self.source.blob(str(config_desc["digest"])))
        if not isinstance(config, dict) or "os" not in config:
            return None  # an attestation or another artifact
        name = platform or str(platform_from_json(config))
        history = [h for h in config.get("history") or [] if not h.get("empty_layer")]
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        layers = []
        for i, d in enumerate(doc.get("layers") or []):
            created_by = str(history[i].get("created_by", "")) if i < len(history) else ""
            media_type, ldigest = str(d.get("mediaType", "")), str(d["digest"])
            size = int(d["size"])
            found = self.cache.get(self.source, ldigest, media_type, size)
            if found and i < len(diff_ids) and found[1] != diff_ids[i]:
                self.warnings.append(f"{name}: layer {ldigest} does not match its diff_id")
            layers.append(LayerReport(ldigest, size, found[0] if found else None, media_type,
                                      created_by, _step_of(created_by, self.steps)))
        refs = tuple(Attached(_kind(d), str(d.get("artifactType", "")), str(d["digest"]))
                     for d in self.source.referrers(digest))
        return PlatformReport(name, digest, int(config_desc.get("size", 0)), tuple(layers),
                              refs)


def read_image(source: ImageSource, *, steps: Collection[str] = (),
               cache: SizeCache | None = None) -> ImageReport:
    """Read ``source``'s image; ``steps`` (a recipe's step ids) confirm ``COPY --from`` names."""
    reader = _Reader(source, steps, cache or _DEFAULT_CACHE)
    top, digest = source.top()
    doc = json.loads(top)
    media_type = str(doc.get("mediaType", ""))
    platforms: list[PlatformReport] = []
    created = (doc.get("annotations") or {}).get(_CREATED)
    if media_type in INDEX_TYPES or "manifests" in doc:
        for entry in doc.get("manifests") or []:
            plat = entry.get("platform")
            name = str(platform_from_json(plat)) if isinstance(plat, dict) else None
            if name == "unknown/unknown":
                continue  # buildkit attestation manifests
            rep = reader.image(source.manifest(str(entry["digest"])), str(entry["digest"]), name)
            if rep is not None:
                platforms.append(rep)
    else:
        rep = reader.image(top, digest, None)
        if rep is not None:
            platforms.append(rep)
    counts: dict[str, int] = {}
    for p in platforms:
        for d in {layer.digest for layer in p.layers}:
            counts[d] = counts.get(d, 0) + 1
    platforms = [
        PlatformReport(p.platform, p.digest, p.config_size, tuple(
            LayerReport(**{**vars(layer), "shared": counts[layer.digest] > 1}) for layer in p.layers
        ), p.attached) for p in sorted(platforms, key=lambda p: p.platform)
    ]
    return ImageReport(source.name, digest, media_type, created, tuple(platforms),
                       warnings=tuple(reader.warnings))


def _minus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a - b


def compare(new: ImageReport, old: ImageReport) -> ImageReport:
    """``new`` with its delta against ``old``, platform by platform."""
    deltas = []
    for name in sorted({p.platform for p in new.platforms} | {p.platform for p in old.platforms}):
        a, b = new.platform(name), old.platform(name)
        if a is None and b is not None:
            deltas.append(PlatformDelta(name, "removed", -b.compressed, _minus(0, b.uncompressed),
                                        removed=tuple(x.digest for x in b.layers)))
        elif a is not None and b is None:
            deltas.append(PlatformDelta(name, "added", a.compressed, a.uncompressed,
                                        added=tuple(x.digest for x in a.layers)))
        elif a is not None and b is not None:
            old_set, new_set = {x.digest for x in b.layers}, {x.digest for x in a.layers}
            deltas.append(PlatformDelta(
                name, "unchanged" if a.digest == b.digest else "changed",
                a.compressed - b.compressed, _minus(a.uncompressed, b.uncompressed),
                tuple(x.digest for x in a.layers if x.digest not in old_set),
                tuple(x.digest for x in b.layers if x.digest not in new_set),
            ))
    return ImageReport(new.reference, new.digest, new.media_type, new.created, new.platforms,
                       old, tuple(deltas), new.warnings + old.warnings)

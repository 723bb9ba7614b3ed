"""Pick one platform's manifest out of an index (nested or not) and load it as a base image."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from crossplan.backends.oci.blobs import Blob, BlobSource, Origin
from crossplan.backends.oci.descriptor import Descriptor, platform_from_json, verify_digest
from crossplan.backends.oci.mediatypes import INDEX_TYPES
from crossplan.backends.oci.spec import BaseImage
from crossplan.errors import RecipeError
from crossplan.platforms import Platform

__all__ = ["ManifestSource", "resolve_platforms"]

_MAX_DEPTH = 4


class ManifestSource(BlobSource, Protocol):
    """A blob source that can also read manifests by digest (a layout, a registry repo)."""

    def read_manifest(self, digest: str) -> bytes: ...


def resolve_platforms(
    top: bytes,
    top_digest: str,
    platforms: Iterable[Platform],
    *,
    source: ManifestSource,
    name: str,
    pinned: str,
    origin: Origin | None = None,
    docs: ManifestSource | None = None,
    layer_source: BlobSource | None = None,
) -> dict[Platform, BaseImage]:
    """For each platform, the base image inside ``top`` (an index or a single manifest).

    Only the wanted platforms' manifests and configs are read (through ``docs`` when given:
    documents kept by digest); layer blobs stay lazy (``Blob.read`` from ``layer_source``,
    layers kept by digest, when given, else from ``source``).
    Raises RecipeError naming what the base has when a platform is missing.
    """
    walk = _Walk(docs or source, frozenset(platforms))
    walk.visit(_parse(top, top_digest), top_digest, depth=0)
    out: dict[Platform, BaseImage] = {}
    for platform in platforms:
        if platform not in walk.found:
            have = ", ".join(sorted(str(p) for p in walk.seen)) or "no usable image"
            raise RecipeError(
                f"base image {name} has no {platform} image",
                hint=f"it provides {have}; pick a multi-platform base or drop {platform}",
            )
        digest, manifest, config = walk.found[platform]
        layers = tuple(
            Blob(Descriptor.from_json(d), layer_source or source, origin)
            for d in manifest.get("layers", [])
        )
        out[platform] = BaseImage(config, layers, digest, name=name, pinned=pinned)
    return out


class _Walk:
    def __init__(self, source: ManifestSource, wanted: frozenset[Platform]) -> None:
        self.source = source
        self.wanted = wanted
        self.seen: set[Platform] = set()
        self.found: dict[Platform, tuple[str, dict[str, Any], dict[str, Any]]] = {}

    def visit(self, doc: dict[str, Any], digest: str, *, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise RecipeError("base image index nests too deeply", hint="is the index cyclic?")
        if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            for entry in doc.get("manifests", []):
                desc = Descriptor.from_json(entry)
                if desc.platform is not None and desc.media_type not in INDEX_TYPES:
                    self.seen.add(desc.platform)
                    if desc.platform not in self.wanted or desc.platform in self.found:
                        continue
                child = self.source.read_manifest(desc.digest)
                self.visit(_parse(child, desc.digest), desc.digest, depth=depth + 1)
            return
        if "config" not in doc:
            return
        config_digest = str(doc["config"]["digest"])
        data = self.source.read_blob(config_digest)
        config = json.loads(verify_digest(data, config_digest, what="base image config"))
        if not isinstance(config, dict) or "os" not in config:
            return  # attestations and other artifacts
        platform = platform_from_json(config)
        self.seen.add(platform)
        if platform in self.wanted:
            self.found.setdefault(platform, (digest, doc, config))


def _parse(data: bytes, digest: str) -> dict[str, Any]:
    doc = json.loads(verify_digest(data, digest, what=f"manifest {digest}"))
    if not isinstance(doc, dict):
        raise RecipeError(f"manifest {digest} is not a JSON object")
    return doc

"""Assemble per-platform OCI manifests and the multi-platform index from image specs."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplan.backends.oci.blobs import Blob, MemoryBlobs
from crossplan.backends.oci.config import image_config, rfc3339
from crossplan.backends.oci.descriptor import Descriptor, canonical_json, sha256_digest
from crossplan.backends.oci.layers import Layer, LayerEntry, build_layer
from crossplan.backends.oci.mediatypes import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    to_oci_layer_type,
)
from crossplan.backends.oci.spec import ImageSpec
from crossplan.errors import RecipeError
from crossplan.platforms import Platform

__all__ = ["BuiltImage", "BuiltIndex", "LayerKey", "build_image", "build_index"]

ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_REVISION = "org.opencontainers.image.revision"
ANNOTATION_SOURCE = "org.opencontainers.image.source"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"

LayerKey = tuple[tuple[LayerEntry, ...], int]  # a layer's entries and mtime: its bytes
_LayerCache = dict[LayerKey, Layer]


@dataclass(frozen=True)
class BuiltImage:
    """One platform's image: manifest and config bytes plus its layer descriptors."""

    platform: Platform
    manifest: bytes = field(repr=False)
    config: bytes = field(repr=False)
    layers: tuple[Descriptor, ...]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor.of(OCI_MANIFEST, self.manifest, platform=self.platform)


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform image ready to write or push.

    ``blobs`` holds configs and layers by digest. Our layers and configs are bytes in
    memory; base layers are read lazily from where the base came from (and verified).
    Manifests and the index are ``documents``: they go to a registry's manifest endpoint.
    """

    index: bytes = field(repr=False)
    images: Mapping[Platform, BuiltImage]
    blobs: Mapping[str, Blob] = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.index)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor.of(OCI_INDEX, self.index)

    @property
    def manifests(self) -> dict[Platform, str]:
        """Platform -> manifest digest."""
        return {p: img.digest for p, img in self.images.items()}

    def documents(self) -> dict[str, bytes]:
        """Digest -> bytes of every manifest and of the index."""
        docs = {img.digest: img.manifest for img in self.images.values()}
        docs[self.digest] = self.index
        return docs


def build_image(platform: Platform, spec: ImageSpec) -> tuple[BuiltImage, dict[str, Blob]]:
    """Build one platform's manifest; returns it with the blobs it references."""
    return _build_image(platform, spec, {})


def _build_image(
    platform: Platform, spec: ImageSpec, cache: _LayerCache, spool: Path | None = None
) -> tuple[BuiltImage, dict[str, Blob]]:
    blobs: dict[str, Blob] = {}
    layers: list[Descriptor] = []
    if spec.base is not None:
        for base_blob in spec.base.layers:
            d = base_blob.descriptor
            media_type = to_oci_layer_type(d.media_type)
            layers.append(Descriptor(media_type, d.digest, d.size, urls=d.urls))
            blobs[d.digest] = base_blob
    diff_ids: list[str] = []
    history: list[dict[str, Any]] = []
    created = rfc3339(spec.created)
    for layer_spec in spec.layers:
        entry: dict[str, Any] = {"created": created, "created_by": layer_spec.created_by}
        if layer_spec.comment:
            entry["comment"] = layer_spec.comment
        history.append(entry)
        if not layer_spec.entries:
            entry["empty_layer"] = True
            continue
        key = (tuple(layer_spec.entries), spec.created)
        if key not in cache:
            cache[key] = build_layer(layer_spec.entries, mtime=spec.created, spool=spool)
        layer = cache[key]
        diff_ids.append(layer.diff_id)
        layers.append(layer.descriptor)
        blobs[layer.digest] = layer.as_blob()
    config = canonical_json(image_config(platform, spec, diff_ids=diff_ids, history=history))
    _check_rootfs(platform, config, len(layers))
    config_desc = Descriptor.of(OCI_CONFIG, config)
    blobs[config_desc.digest] = Blob(config_desc, MemoryBlobs({config_desc.digest: config}))
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc.to_json(),
        "layers": [d.to_json() for d in layers],
    }
    if spec.base is not None and spec.base.digest:
        manifest["annotations"] = {
            ANNOTATION_BASE_DIGEST: spec.base.digest,
            ANNOTATION_BASE_NAME: spec.base.name,
        }
    image = BuiltImage(platform, canonical_json(manifest), config, tuple(layers))
    return image, blobs


def _layers_in_parallel(
    images: Mapping[Platform, ImageSpec], started: Mapping[LayerKey, Future[Layer]],
    spool: Path | None,
) -> _LayerCache:
    """Every distinct layer of ``images`` built at once, one thread each (zlib and sha256
    release the GIL: a two-platform image compresses its two binaries on two cores), or
    taken from ``started`` (layers a backend began before the image node ran, by the same
    function of the same entries). The bytes are those of building them one by one."""
    wanted = list(dict.fromkeys(
        (tuple(layer.entries), spec.created)
        for spec in images.values() for layer in spec.layers if layer.entries))
    cache: _LayerCache = {}
    missing = [k for k in wanted if k not in started]
    if len(missing) < 2 and not started:
        return cache
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, min(len(missing), os.cpu_count() or 1))) as pool:
        built = pool.map(lambda k: build_layer(k[0], mtime=k[1], spool=spool), missing)
        for key in wanted:
            future = started.get(key)
            if future is not None:
                layer = _result(future)
                if layer is not None:
                    cache[key] = layer
        cache.update(zip(missing, built, strict=True))
    return cache


def _result(future: Future[Layer]) -> Layer | None:
    """A layer started early, or None if building it failed (building it again reports
    why, as the image node's own failure)."""
    try:
        return future.result()
    except Exception:  # the image node builds it again and reports the error
        return None


def build_index(
    images: Mapping[Platform, ImageSpec],
    *,
    created: int | None = None,
    revision: str | None = None,
    source: str | None = None,
    annotations: Mapping[str, str] | None = None,
    started: Mapping[LayerKey, Future[Layer]] | None = None,
    spool: Path | None = None,
) -> BuiltIndex:
    """Build every platform and the index over them (platforms sorted, so order is irrelevant).

    ``created`` defaults to the newest spec's ``created``; ``revision`` and ``source`` become
    ``org.opencontainers.image.revision``/``.source`` annotations when given. ``started``:
    layers already being built (``LayerKey`` -> future), used instead of building them again.
    ``spool``: where a layer too large to hold in memory goes (``build_layer``; the caller
    removes it once the index is written).
    """
    if not images:
        raise RecipeError("an image needs at least one platform")
    cache: _LayerCache = _layers_in_parallel(images, started or {}, spool)
    built: dict[Platform, BuiltImage] = {}
    blobs: dict[str, Blob] = {}
    for platform in sorted(images):
        image, image_blobs = _build_image(platform, images[platform], cache, spool)
        built[platform] = image
        blobs.update(image_blobs)
    epoch = created if created is not None else max(s.created for s in images.values())
    notes = {ANNOTATION_CREATED: rfc3339(epoch)}
    if revision:
        notes[ANNOTATION_REVISION] = revision
    if source:
        notes[ANNOTATION_SOURCE] = source
    notes.update(annotations or {})
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [img.descriptor.to_json() for img in built.values()],
        "annotations": notes,
    }
    return BuiltIndex(canonical_json(index), built, blobs)


def _check_rootfs(platform: Platform, config: bytes, layer_count: int) -> None:
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    if len(diff_ids) != layer_count:
        raise RecipeError(
            f"{platform}: base config lists {len(diff_ids)} diff_ids for {layer_count} layers",
            hint="the base image is inconsistent; pin a different base",
        )

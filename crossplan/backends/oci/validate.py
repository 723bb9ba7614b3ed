"""One conformance check for built indexes, reused by every test that builds an image."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

from crossplan.backends.oci.descriptor import canonical_json, platform_from_json
from crossplan.backends.oci.image import BuiltImage, BuiltIndex
from crossplan.backends.oci.mediatypes import OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST

__all__ = ["validate_index"]


def validate_index(built: BuiltIndex, *, read_layers: bool = True) -> list[str]:
    """Problems found in ``built`` (empty list = valid): JSON shape, digests, sizes,
    platforms, diff_ids vs layers, history vs layers. ``read_layers`` also decompresses
    every layer (base layers included) and checks its diff_id."""
    problems: list[str] = []
    index = _doc(built.index, "index", problems)
    if index.get("mediaType") != OCI_INDEX or index.get("schemaVersion") != 2:
        problems.append("index: wrong mediaType or schemaVersion")
    entries = index.get("manifests", [])
    if [e.get("digest") for e in entries] != [i.digest for i in built.images.values()]:
        problems.append("index: manifest list does not match the built images")
    for entry in entries:
        image = next((i for i in built.images.values() if i.digest == entry.get("digest")), None)
        if image is None:
            continue
        if entry.get("size") != len(image.manifest):
            problems.append(f"index: wrong size for {image.platform}")
        if platform_from_json(entry.get("platform") or {}) != image.platform:
            problems.append(f"index: wrong platform for {image.digest}")
        problems.extend(_image(built, image, read_layers))
    return problems


def _doc(data: bytes, what: str, problems: list[str]) -> dict[str, Any]:
    doc = json.loads(data)
    if canonical_json(doc) != data:
        problems.append(f"{what}: JSON is not canonical")
    return doc if isinstance(doc, dict) else {}


def _image(built: BuiltIndex, image: BuiltImage, read_layers: bool) -> list[str]:
    where = str(image.platform)
    problems: list[str] = []
    manifest = _doc(image.manifest, where, problems)
    if manifest.get("mediaType") != OCI_MANIFEST:
        problems.append(f"{where}: manifest mediaType is {manifest.get('mediaType')}")
    config_digest = manifest.get("config", {}).get("digest")
    blob = built.blobs.get(str(config_digest))
    if blob is None or blob.read() != image.config:
        problems.append(f"{where}: config blob missing or different")
    config = _doc(image.config, f"{where} config", problems)
    if platform_from_json(config) != image.platform:
        problems.append(f"{where}: config says {platform_from_json(config)}")
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    layers = manifest.get("layers", [])
    if len(diff_ids) != len(layers):
        problems.append(f"{where}: {len(diff_ids)} diff_ids for {len(layers)} layers")
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    if config.get("history") and len(history) != len(layers):
        problems.append(f"{where}: {len(history)} history entries for {len(layers)} layers")
    for layer, diff_id in zip(layers, diff_ids, strict=False):
        problems.extend(_layer(built, where, layer, diff_id, read_layers))
    return problems


def _layer(
    built: BuiltIndex, where: str, layer: dict[str, Any], diff_id: str, read: bool
) -> list[str]:
    blob = built.blobs.get(str(layer.get("digest")))
    if blob is None or blob.descriptor.size != layer.get("size"):
        return [f"{where}: layer {layer.get('digest')} missing or wrong size"]
    if not read:
        return []
    data = blob.read()
    if layer.get("mediaType") == OCI_LAYER_GZIP:
        data = gzip.decompress(data)
    elif layer.get("mediaType") != OCI_LAYER:
        return []  # zstd and friends: digest already verified by read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != diff_id:
        return [f"{where}: layer {layer.get('digest')} does not match diff_id {diff_id}"]
    return []

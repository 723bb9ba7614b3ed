"""Read a complete OCI image layout back into a BuiltIndex (to re-export or push it)."""

from __future__ import annotations

import json
from pathlib import Path

from crossplan.backends.oci.blobs import Blob
from crossplan.backends.oci.descriptor import Descriptor
from crossplan.backends.oci.image import BuiltImage, BuiltIndex
from crossplan.backends.oci.layout import LayoutRef, _LayoutBlobs
from crossplan.backends.oci.mediatypes import OCI_INDEX
from crossplan.errors import EnvironmentProblem

__all__ = ["read_layout_index"]


def read_layout_index(path: Path) -> BuiltIndex:
    """The multi-platform index a layout's ``index.json`` names, with lazily read blobs."""
    source = _LayoutBlobs(LayoutRef("oci", Path(path), None))
    entries = json.loads(source._read("index.json")).get("manifests", [])
    tops = [Descriptor.from_json(e) for e in entries if e.get("mediaType") == OCI_INDEX]
    if len({t.digest for t in tops}) != 1:
        raise EnvironmentProblem(
            f"{path}: expected exactly one image index in index.json, found {len(tops)}",
            hint="rebuild the image step",
        )
    index_bytes = source.read_manifest(tops[0].digest)
    images: dict[object, BuiltImage] = {}
    blobs: dict[str, Blob] = {}
    for m in json.loads(index_bytes)["manifests"]:
        desc = Descriptor.from_json(m)
        if desc.platform is None:
            continue
        manifest = source.read_manifest(desc.digest)
        doc = json.loads(manifest)
        config_desc = Descriptor.from_json(doc["config"])
        layers = tuple(Descriptor.from_json(d) for d in doc.get("layers", []))
        config = source.read_blob(config_desc.digest)
        images[desc.platform] = BuiltImage(desc.platform, manifest, config, layers)
        for d in (config_desc, *layers):
            blobs[d.digest] = Blob(d, source)
    return BuiltIndex(index_bytes, images, blobs)  # type: ignore[arg-type]

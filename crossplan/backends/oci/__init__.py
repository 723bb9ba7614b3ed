"""Daemonless OCI images: layers -> image/index -> layout, archive or registry (no Docker).

A build reads as a pipeline::

    bases = resolve_base("oci:base-layout", platforms)          # or a registry ref, or scratch
    specs = {p: ImageSpec(base=bases[p], layers=[LayerSpec(entries[p], "step 'build'")],
                          entrypoint=["/app"], created=epoch) for p in platforms}
    built = build_index(specs, revision=git_sha, source=repo_url)
    export(built, "oci:out/layout:1.0")                          # or "localhost:5000/app:1.0"
"""

from crossplan.backends.oci.base import resolve_base
from crossplan.backends.oci.blobs import Blob, BlobSource, MemoryBlobs, Origin
from crossplan.backends.oci.descriptor import Descriptor, canonical_json, sha256_digest
from crossplan.backends.oci.export import ExportResult, export
from crossplan.backends.oci.image import BuiltImage, BuiltIndex, build_image, build_index
from crossplan.backends.oci.layers import Layer, LayerEntry, build_layer, entries_from_tree
from crossplan.backends.oci.layout import (
    LayoutRef,
    parse_layout_ref,
    read_layout_base,
    write_archive,
    write_layout,
)
from crossplan.backends.oci.publish import PushResult, arch_tag_names, push_index
from crossplan.backends.oci.pull import pull_base
from crossplan.backends.oci.reference import Reference
from crossplan.backends.oci.registry import RegistryClient, RegistryError
from crossplan.backends.oci.spec import BaseImage, ImageSpec, LayerSpec
from crossplan.backends.oci.validate import validate_index

__all__ = [
    "BaseImage",
    "Blob",
    "BlobSource",
    "BuiltImage",
    "BuiltIndex",
    "Descriptor",
    "ExportResult",
    "ImageSpec",
    "Layer",
    "LayerEntry",
    "LayerSpec",
    "LayoutRef",
    "MemoryBlobs",
    "Origin",
    "PushResult",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "arch_tag_names",
    "build_image",
    "build_index",
    "build_layer",
    "canonical_json",
    "entries_from_tree",
    "export",
    "parse_layout_ref",
    "pull_base",
    "push_index",
    "read_layout_base",
    "resolve_base",
    "sha256_digest",
    "validate_index",
    "write_archive",
    "write_layout",
]

"""Daemonless OCI images: layers -> image/index -> layout, archive or registry (no Docker).

A build reads as a pipeline::

    bases = resolve_base("oci:base-layout", platforms)          # or a registry ref, or scratch
    specs = {p: ImageSpec(base=bases[p], layers=[LayerSpec(entries[p], "step 'build'")],
                          entrypoint=["/app"], created=epoch) for p in platforms}
    built = build_index(specs, revision=git_sha, source=repo_url)
    export(built, "oci:out/layout:1.0")                          # or "localhost:5000/app:1.0"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossplan._lazy import lazy_names

# Where each name lives, imported on first use: reading a layout (a no-op run's images)
# does not load the registry client (httpx).
_WHERE = {  # submodule: the names it holds
    "base": "resolve_base",
    "blobs": "Blob BlobSource MemoryBlobs Origin",
    "descriptor": "Descriptor canonical_json sha256_digest",
    "export": "ExportResult export",
    "image": "BuiltImage BuiltIndex build_image build_index",
    "layers": "Layer LayerEntry build_layer entries_from_tree",
    "layout": "LayoutRef parse_layout_ref read_layout_base write_archive write_layout",
    "publish": "PushResult arch_tag_names push_index",
    "pull": "pull_base",
    "reference": "Reference",
    "registry": "RegistryClient RegistryError",
    "spec": "BaseImage ImageSpec LayerSpec",
    "validate": "validate_index",
}
_HOME = {name: f"{__name__}.{mod}" for mod, names in _WHERE.items() for name in names.split()}

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


__getattr__ = lazy_names(__name__, _HOME)


if TYPE_CHECKING:
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

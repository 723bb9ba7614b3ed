"""Send a built index to a destination: ``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``, a ref."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from crossplan.backends.oci.image import BuiltIndex
from crossplan.backends.oci.layout import parse_layout_ref, write_archive, write_layout
from crossplan.backends.oci.publish import PushResult, push_index

__all__ = ["ExportResult", "export"]


@dataclass(frozen=True)
class ExportResult:
    """Where the image went; ``push`` is set for registry destinations."""

    destination: str
    index_digest: str
    path: Path | None = None
    push: PushResult | None = None

    def summary(self) -> str:
        return self.push.summary() if self.push else f"{self.destination}@{self.index_digest}"


def export(
    built: BuiltIndex,
    destination: str,
    *,
    tags: Sequence[str] = (),
    arch_tags: bool = False,
    insecure: bool = False,
    transport: httpx.BaseTransport | None = None,
    ref_name: str | None = None,
) -> ExportResult:
    """Write a layout or archive (atomically), or push to a registry (tags last).

    For layouts, the index's ref name is the ``:TAG`` suffix, else ``ref_name``, else the
    first of ``tags``; each platform's manifest is also named ``REF-<arch><variant>`` (what
    umoci needs), so ``oci:DIR:REF`` names the index for skopeo and the others. The result's
    ``destination`` is the reference that addresses the index.
    """
    layout = parse_layout_ref(destination)
    if layout is None:
        push = push_index(
            built,
            destination,
            tags=tags,
            arch_tags=arch_tags,
            insecure=insecure,
            transport=transport,
        )
        return ExportResult(destination, built.digest, push=push)
    name = layout.ref or ref_name or (tags[0] if tags else None)
    platform_refs = {p: f"{name}-{p.arch_variant}" for p in built.images} if name else None
    writer = write_layout if layout.kind == "oci" else write_archive
    path = writer(built, layout.path, ref_name=name, platform_refs=platform_refs)
    where = f"{layout.kind}:{layout.path}" + (f":{name}" if name else "")
    return ExportResult(where, built.digest, path=path)

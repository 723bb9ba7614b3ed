"""The CycloneDX 1.5 JSON SBOM of one platform image (``[attest] sbom = "cyclonedx"``),
built with cyclonedx-python-lib from the same facts as the SPDX one: the image as the
metadata component, its files and packages as components, ``dependsOn`` from each binary
to what it contains. Deterministic: serial number from the manifest digest, time from
SOURCE_DATE_EPOCH."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from crossplan.attest.contents import ImageFacts

__all__ = ["MEDIA_TYPE", "cyclonedx_json"]

MEDIA_TYPE = "application/vnd.cyclonedx+json"


def cyclonedx_json(facts: ImageFacts, tool_version: str) -> bytes:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot5
    from packageurl import PackageURL

    plat = str(facts.platform)
    image = Component(name=f"{facts.step} ({plat})", type=ComponentType.CONTAINER,
                      version=facts.manifest, bom_ref=f"image:{facts.manifest}",
                      hashes=[HashType(alg=HashAlgorithm.SHA_256,
                                       content=facts.manifest.partition(":")[2])])
    components: list[Component] = []
    for f in facts.files:
        components.append(Component(
            name="/" + f.path, type=ComponentType.FILE, bom_ref=f"file:{f.path}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=f.sha256.partition(":")[2]),
                    HashType(alg=HashAlgorithm.SHA_1, content=f.sha1)],
            properties=[Property(name="crossplan:step", value=f.step or "base")],
        ))
    for i, p in enumerate(facts.packages):
        kind = ComponentType.FRAMEWORK if p.kind == "toolchain" else ComponentType.LIBRARY
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=p.sha256)] if len(
            p.sha256) == 64 else []
        components.append(Component(
            name=p.name, version=p.version or None, type=kind, bom_ref=f"pkg:{i}:{p.purl}",
            purl=PackageURL.from_string(p.purl), hashes=hashes,
            properties=[Property(name="crossplan:kind", value=p.kind),
                        Property(name="crossplan:step", value=p.step or "base")]
            + ([Property(name="crossplan:binary", value=p.binary)] if p.binary else []),
        ))
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"crossplan:{facts.project}:{facts.step}:"
                                            f"{facts.manifest}")
    meta = BomMetaData(component=image,
                       timestamp=datetime.fromtimestamp(facts.created, UTC),
                       properties=[Property(name="crossplan:version", value=tool_version)])
    bom = Bom(components=components, serial_number=serial, metadata=meta)
    for c in components:
        bom.register_dependency(image, [c])
    return JsonV1Dot5(bom).output_as_string(indent=2).encode()

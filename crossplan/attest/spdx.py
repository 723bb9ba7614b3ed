"""The SPDX 2.3 JSON SBOM of one platform image, built and validated with spdx-tools:
the image as the described package, its files (SHA-1 + SHA-256), the packages in it
(base dpkg/apk, Go modules, Cargo crates, sysroot packages), the toolchains and source
trees, and CONTAINS / GENERATED_FROM / BUILD_TOOL_OF / BUILD_DEPENDENCY_OF relationships.
Deterministic: ids come from content, the only time is SOURCE_DATE_EPOCH."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

from crossplan.attest.contents import ImageFacts, PackageFact
from crossplan.errors import StepFailed

__all__ = ["MEDIA_TYPE", "spdx_json"]

MEDIA_TYPE = "application/spdx+json"


def _id(kind: str, *parts: str) -> str:
    return f"SPDXRef-{kind}-" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _pkg_id(p: PackageFact) -> str:
    return _id(p.kind, p.name, p.version, p.step or "", p.binary or "")


def spdx_json(facts: ImageFacts, tool_version: str) -> bytes:
    """The SPDX document (JSON bytes); a document spdx-tools finds invalid is a bug: raise."""
    from spdx_tools.spdx.model.actor import Actor, ActorType
    from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
    from spdx_tools.spdx.model.document import CreationInfo, Document
    from spdx_tools.spdx.model.file import File
    from spdx_tools.spdx.model.package import (
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        PackagePurpose,
    )
    from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
    from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    plat = str(facts.platform)
    hexd = facts.manifest.partition(":")[2]
    info = CreationInfo(
        "SPDX-2.3", "SPDXRef-DOCUMENT", f"{facts.project}-{facts.step}-{plat}",
        f"https://spdx.org/spdxdocs/crossplan/{facts.project}/{facts.step}/"
        f"{plat.replace('/', '-')}/{hexd}",
        [Actor(ActorType.TOOL, f"crossplan-{tool_version}")],
        datetime.fromtimestamp(facts.created, UTC).replace(tzinfo=None),
        creator_comment="made from the build's own facts (not by scanning)",
    )
    none = SpdxNoAssertion()
    image_id = "SPDXRef-Image"
    packages = [Package(
        image_id, f"{facts.step} ({plat})", none, version=facts.manifest, files_analyzed=True,
        checksums=[Checksum(ChecksumAlgorithm.SHA256, hexd)],
        primary_package_purpose=PackagePurpose.CONTAINER,
        external_references=[ExternalPackageRef(
            ExternalPackageRefCategory.PACKAGE_MANAGER, "purl",
            f"pkg:oci/{facts.step}@{facts.manifest.replace(':', '%3A')}"
            f"?arch={facts.platform.arch}")],
        copyright_text=none, license_concluded=none, license_declared=none,
    )]
    rels = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, image_id)]
    files = []
    file_ids: dict[str, str] = {}
    for f in facts.files:
        fid = _id("File", f.path)
        file_ids[f.path] = fid
        files.append(File(
            "./" + f.path, fid, [Checksum(ChecksumAlgorithm.SHA1, f.sha1),
                                 Checksum(ChecksumAlgorithm.SHA256, f.sha256.partition(":")[2])],
            comment=f"from step {f.step}" if f.step else "from the base image",
        ))
        rels.append(Relationship(image_id, RelationshipType.CONTAINS, fid))
    if facts.base is not None:
        name, digest = facts.base
        packages.append(Package(
            "SPDXRef-Base", name or "base", none, version=digest, files_analyzed=False,
            checksums=[Checksum(ChecksumAlgorithm.SHA256, digest.partition(":")[2])],
            comment="the base image's platform manifest", copyright_text=none,
        ))
        rels.append(Relationship(image_id, RelationshipType.DESCENDANT_OF, "SPDXRef-Base"))
    by_step: dict[str, list[str]] = {}
    for f in facts.files:
        if f.step is not None:
            by_step.setdefault(f.step, []).append(file_ids[f.path])
    for s in facts.sources:
        sid = _id("Source", s.node)
        packages.append(Package(
            sid, f"{s.step} sources", none, version=s.tree or "unknown", files_analyzed=False,
            primary_package_purpose=PackagePurpose.SOURCE,
            comment=f"input tree of step {s.step} ({s.kind}), crossplan tree digest; "
                    f"action key {s.key or 'unknown'}",
            copyright_text=none,
        ))
        for fid in by_step.get(s.step, ()):
            rels.append(Relationship(fid, RelationshipType.GENERATED_FROM, sid))
    for p in facts.packages:
        pid = _pkg_id(p)
        checks = [Checksum(ChecksumAlgorithm.SHA256, p.sha256)] if len(p.sha256) == 64 else []
        packages.append(Package(
            pid, p.name, none, version=p.version or None, files_analyzed=False,
            checksums=checks, comment=p.comment or None, copyright_text=none,
            primary_package_purpose=(PackagePurpose.OPERATING_SYSTEM if p.kind == "toolchain"
                                     else PackagePurpose.LIBRARY),
            external_references=[ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", p.purl)],
        ))
        targets = ([file_ids[p.binary]] if p.binary in file_ids
                   else by_step.get(p.step, []) if p.step else [])
        if p.kind == "toolchain" and p.binary is None:
            rels += [Relationship(pid, RelationshipType.BUILD_TOOL_OF, t) for t in targets]
        elif p.kind == "sysroot":
            rels += [Relationship(pid, RelationshipType.BUILD_DEPENDENCY_OF, t)
                     for t in targets]
        else:
            rels += [Relationship(t, RelationshipType.CONTAINS, pid) for t in targets]
            rels.append(Relationship(image_id, RelationshipType.CONTAINS, pid))
    doc = Document(info, packages=packages, files=files, relationships=rels)
    problems = validate_full_spdx_document(doc)
    if problems:
        raise StepFailed(f"the SPDX document of {facts.step} ({plat}) is invalid: "
                         + "; ".join(p.validation_message for p in problems[:3]),
                         step=facts.step, hint="report this as a crossplan bug")
    out = io.StringIO()
    write_document_to_stream(doc, out, validate=False)
    return out.getvalue().encode()

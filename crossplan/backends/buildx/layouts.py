"""OCI layouts from buildx: unpack its tarballs, wrap single manifests in an index, merge."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crossplan.backends.oci.descriptor import (
    canonical_json,
    platform_from_json,
    platform_to_json,
    sha256_digest,
)
from crossplan.backends.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

__all__ = ["merge_layouts", "normalize_layout", "unpack_layout"]

_OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}'


def unpack_layout(archive: Path, dest: Path) -> Path:
    """Extract an OCI layout tarball (buildx ``type=oci`` or ``docker save``) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.isfile() or m.isdir()]
        for m in members:
            if m.name.startswith("/") or ".." in Path(m.name).parts:
                raise EnvironmentProblem(f"{archive}: unsafe path in image archive: {m.name}")
        tf.extractall(dest, members=members, filter="data")
    for name in ("manifest.json", "repositories"):  # docker-save extras, not OCI layout
        (dest / name).unlink(missing_ok=True)
    return dest


def _blob(root: Path, digest: str) -> bytes:
    algo, _, hexd = digest.partition(":")
    return (root / "blobs" / algo / hexd).read_bytes()


def _write_blob(root: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    path = root / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return digest


def _manifests(root: Path) -> list[dict[str, Any]]:
    """Platform manifests named by index.json, descending into one nested index."""
    out: list[dict[str, Any]] = []
    top = json.loads((root / "index.json").read_text()).get("manifests", [])
    for desc in top:
        if desc.get("mediaType") in INDEX_TYPES:
            inner = json.loads(_blob(root, desc["digest"]))
            out += [d for d in inner.get("manifests", []) if d.get("mediaType") in MANIFEST_TYPES]
        elif desc.get("mediaType") in MANIFEST_TYPES:
            out.append(desc)
    result = []
    for desc in out:
        doc = json.loads(_blob(root, desc["digest"]))
        config = json.loads(_blob(root, doc["config"]["digest"]))
        if "architecture" not in config:
            continue  # attestations
        plat = platform_from_json(config)
        result.append({"mediaType": desc["mediaType"], "digest": desc["digest"],
                       "size": desc["size"], "platform": platform_to_json(plat)})
    return result


def normalize_layout(root: Path) -> str:
    """Make ``index.json`` name exactly one OCI image index (what crossplan's store holds);
    a single-platform build's bare manifest gets wrapped. Returns the index digest."""
    top = json.loads((root / "index.json").read_text()).get("manifests", [])
    if len(top) == 1 and top[0].get("mediaType") == OCI_INDEX:
        return str(top[0]["digest"])
    manifests = _manifests(root)
    if not manifests:
        raise EnvironmentProblem(f"{root}: the image archive holds no image manifest")
    return _write_index(root, manifests)


def _write_index(root: Path, manifests: list[dict[str, Any]]) -> str:
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    digest = _write_blob(root, index)
    (root / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": digest, "size": len(index)}],
    }))
    (root / "oci-layout").write_text(_OCI_LAYOUT)
    return digest


def merge_layouts(parts: Mapping[Platform, Path], dest: Path) -> str:
    """One layout whose index holds each part's manifest, in ``parts`` order (per-platform
    builds). Blobs are copied once. Returns the index digest."""
    dest.mkdir(parents=True, exist_ok=True)
    manifests: list[dict[str, Any]] = []
    for platform, part in parts.items():
        found = [m for m in _manifests(part) if platform_from_json(m["platform"]) == platform]
        if not found:
            raise EnvironmentProblem(f"the {platform} build left no {platform} image in {part}")
        manifests.append(found[0])
        for blob in (part / "blobs").rglob("*"):
            if blob.is_file():
                target = dest / blob.relative_to(part)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(blob, target)
    return _write_index(dest, manifests)

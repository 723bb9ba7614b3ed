"""Attestations as OCI artifacts whose ``subject`` is the platform manifest they describe,
never index entries: pushed to a registry (the OCI 1.1 referrers API where it answers,
else the ``sha256-<hex>`` referrers tag schema) or written into an OCI layout
(``index.json`` lists them, as oras' layout store expects). With a cosign key, cosign's
own ``.sig`` / ``.att`` tags are written too so that stock ``cosign verify`` finds them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplan.backends.oci.config import rfc3339
from crossplan.backends.oci.descriptor import canonical_json, sha256_digest
from crossplan.backends.oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from crossplan.backends.oci.registry import RegistryClient

__all__ = ["KIND", "Artifact", "artifact", "cosign_manifest", "cosign_signature_artifact",
           "merged_index", "push_artifacts", "push_cosign_tag", "referrers_tag",
           "write_to_layout"]

KIND = "dev.crossplan.attestation"  # annotation: sbom | provenance | signature
EMPTY = ("application/vnd.oci.empty.v1+json", b"{}")
COSIGN_SIG_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Artifact:
    """One manifest with its blobs (config and layers), ready to push or write."""

    kind: str
    artifact_type: str
    manifest: bytes
    blobs: Mapping[str, bytes] = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    def descriptor(self) -> dict[str, Any]:
        doc = json.loads(self.manifest)
        out: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": self.digest,
                               "size": len(self.manifest), "artifactType": self.artifact_type}
        if doc.get("annotations"):
            out["annotations"] = doc["annotations"]
        return out


def _desc(media_type: str, data: bytes, annotations: Mapping[str, str] | None = None
          ) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data),
                         "size": len(data)}
    if annotations:
        d["annotations"] = dict(annotations)
    return d


def _cosign_config(layers: Sequence[bytes]) -> bytes:
    """The image config cosign writes beside its signature layers (zero time, no os)."""
    return json.dumps({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(x) for x in layers]},
        "config": {},
    }, separators=(",", ":")).encode()


def artifact(
    kind: str, artifact_type: str, subject: tuple[str, int], layers: Sequence[
        tuple[str, bytes, Mapping[str, str]]], *, created: int,
    config: tuple[str, bytes] = EMPTY, annotations: Mapping[str, str] | None = None,
) -> Artifact:
    """An artifact manifest: ``layers`` are (media type, bytes, annotations); ``subject``
    (digest, size) of the platform manifest it describes."""
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": _desc(config[0], config[1]),
        "layers": [_desc(mt, data, ann) for mt, data, ann in layers],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": subject[1]},
        "annotations": {"org.opencontainers.image.created": rfc3339(created), KIND: kind,
                        **(annotations or {})},
    }
    blobs = {sha256_digest(config[1]): config[1]}
    blobs.update({sha256_digest(data): data for _, data, _ in layers})
    return Artifact(kind, artifact_type, canonical_json(manifest), blobs)


def cosign_signature_artifact(subject: tuple[str, int], payload: bytes, sig_b64: str,
                              *, created: int) -> Artifact:
    """cosign's OCI 1.1 signature: config media type names the artifact type."""
    return artifact("signature", COSIGN_SIG_TYPE, subject, [
        ("application/vnd.dev.cosign.simplesigning.v1+json", payload,
         {"dev.cosignproject.cosign/signature": sig_b64})],
        created=created, config=(COSIGN_SIG_TYPE, _cosign_config([payload])))


def cosign_manifest(layers: Sequence[tuple[str, bytes, Mapping[str, str]]],
                    existing: bytes | None) -> Artifact:
    """A cosign ``.sig``/``.att`` tag manifest: ``existing`` layers kept, ours appended
    (an identical layer is not repeated)."""
    old: list[dict[str, Any]] = json.loads(existing)["layers"] if existing else []
    new = [_desc(mt, data, ann) for mt, data, ann in layers]
    keep = [d for d in old if d not in new]
    all_layers = keep + new
    config = json.dumps({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in all_layers]},
        "config": {},
    }, separators=(",", ":")).encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": _desc(_CONFIG, config), "layers": all_layers}
    blobs = {sha256_digest(config): config}
    blobs.update({sha256_digest(data): data for _, data, _ in layers})
    return Artifact("cosign", _CONFIG, json.dumps(manifest, separators=(",", ":")).encode(),
                    blobs)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest`` (``sha256-<hex>``)."""
    algo, _, hexpart = digest.partition(":")
    return f"{algo}-{hexpart}"


def merged_index(existing: bytes | None, ours: Iterable[Artifact]) -> bytes:
    """The referrers index: other tools' entries kept, ours replacing our older ones."""
    mine = list(ours)
    kinds = {a.kind for a in mine}
    old = json.loads(existing).get("manifests", []) if existing else []
    keep = [d for d in old if (d.get("annotations") or {}).get(KIND) not in kinds]
    digests = {a.digest for a in mine}
    entries = [d for d in keep if d.get("digest") not in digests]
    entries += [a.descriptor() for a in mine]
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def push_artifacts(client: RegistryClient, repo: str, subject: str,
                   artifacts: Sequence[Artifact]) -> str:
    """Push ``artifacts`` (all about ``subject``) and make them discoverable; returns how
    ("referrers API" or "referrers tag sha256-...")."""
    for a in artifacts:
        for digest, data in sorted(a.blobs.items()):
            if not client.has_blob(repo, digest):
                client.upload_blob(repo, digest, data)
        client.put_manifest(repo, a.digest, a.manifest, OCI_MANIFEST)
    if client.referrers(repo, subject) is not None:
        return "referrers API"
    tag = referrers_tag(subject)
    found = client.get_manifest(repo, tag)
    index = merged_index(found[0] if found else None, artifacts)
    if found is None or found[0] != index:
        client.put_manifest(repo, tag, index, OCI_INDEX)
    return f"referrers tag {tag}"


def push_cosign_tag(client: RegistryClient, repo: str, tag: str,
                    layers: Sequence[tuple[str, bytes, Mapping[str, str]]]) -> None:
    """Write (or extend) cosign's ``sha256-<hex>.sig`` / ``.att`` tag."""
    found = client.get_manifest(repo, tag)
    art = cosign_manifest(layers, found[0] if found else None)
    for digest, data in sorted(art.blobs.items()):
        if not client.has_blob(repo, digest):
            client.upload_blob(repo, digest, data)
    if found is None or found[0] != art.manifest:
        client.put_manifest(repo, tag, art.manifest, OCI_MANIFEST)


def write_to_layout(layout: Path, artifacts: Sequence[Artifact]) -> None:
    """Add ``artifacts`` to an OCI layout directory: blobs, and entries in ``index.json``
    (our older attestations of the same subjects replaced). The image index is untouched."""
    for a in artifacts:
        for digest, data in [*a.blobs.items(), (a.digest, a.manifest)]:
            algo, _, hexpart = digest.partition(":")
            path = layout / "blobs" / algo / hexpart
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                _write(path, data)
    top_path = layout / "index.json"
    top = json.loads(top_path.read_bytes())
    subjects = {json.loads(a.manifest)["subject"]["digest"] for a in artifacts}
    kinds = {a.kind for a in artifacts}
    entries = []
    for e in top.get("manifests", []):
        ann = e.get("annotations") or {}
        if ann.get(KIND) in kinds and ann.get("dev.crossplan.subject") in subjects:
            continue
        entries.append(e)
    for a in artifacts:
        d = a.descriptor()
        d["annotations"] = {**d.get("annotations", {}),
                            "dev.crossplan.subject": json.loads(a.manifest)["subject"]["digest"]}
        if d["digest"] not in {e.get("digest") for e in entries}:
            entries.append(d)
    top["manifests"] = entries
    _write(top_path, canonical_json(top))

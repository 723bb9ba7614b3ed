"""One action key as an OCI artifact: manifest -> entry JSON (config) + one layer per blob.

Layout of the artifact pushed under tag ``k-<key>`` in the cache repository::

    manifest  application/vnd.oci.image.manifest.v1+json
              artifactType   application/vnd.crossplan.action.v1+json
              annotations    dev.crossplan.key, dev.crossplan.node, [dev.crossplan.signature]
    config    application/vnd.crossplan.action.config.v1+json: the store Entry's JSON plus
              ``blobs``: {blake3: {sha256, size}} for every output file and the log
    layers    application/vnd.crossplan.blob.v1, one per distinct blob, annotated with its
              blake3 (``dev.crossplan.blake3``) and a file path (``org.opencontainers.image.title``)

The config is the authority: blobs are fetched by the sha256 it names and checked against
both that sha256 and the blake3 the local store files them under.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from crossplan.backends.oci.descriptor import Descriptor, canonical_json, sha256_digest
from crossplan.backends.oci.mediatypes import OCI_MANIFEST
from crossplan.cache.store import Entry

__all__ = [
    "ARTIFACT_TYPE",
    "BLOB_TYPE",
    "CONFIG_TYPE",
    "Artifact",
    "BlobRef",
    "InvalidArtifact",
    "blob_digests",
    "encode",
    "parse_config",
    "parse_manifest",
    "tag_for",
]

ARTIFACT_TYPE = "application/vnd.crossplan.action.v1+json"
CONFIG_TYPE = "application/vnd.crossplan.action.config.v1+json"
BLOB_TYPE = "application/vnd.crossplan.blob.v1"
ANN_KEY = "dev.crossplan.key"
ANN_NODE = "dev.crossplan.node"
ANN_BLAKE3 = "dev.crossplan.blake3"
ANN_SIGNATURE = "dev.crossplan.signature"
ANN_TITLE = "org.opencontainers.image.title"
SCHEMA = 1
MAX_CONFIG_BYTES = 16 << 20
_HEX = re.compile(r"^[0-9a-f]{64}$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


class InvalidArtifact(Exception):
    """What the registry holds under a key's tag is not a usable crossplan action."""


def tag_for(key: str) -> str:
    """The tag of an action key: ``k-`` + its 64 hex digits (tags allow 128 characters)."""
    if not _HEX.match(key[:64]):
        raise ValueError(f"not an action key: {key!r}")
    return f"k-{key[:64]}"


@dataclass(frozen=True)
class BlobRef:
    """One blob as both stores name it: blake3 locally, sha256 in the registry."""

    blake3: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Artifact:
    """A parsed (or to-be-pushed) action: its entry, blobs, config bytes and signature."""

    key: str
    entry: Entry
    blobs: tuple[BlobRef, ...]
    config: bytes
    signature: str | None = None

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)

    def manifest(self) -> bytes:
        titles = _titles(self.entry)
        layers = [
            Descriptor(BLOB_TYPE, b.sha256, b.size, annotations={
                ANN_BLAKE3: b.blake3, ANN_TITLE: titles.get(b.blake3, ""),
            }).to_json()
            for b in self.blobs
        ]
        annotations = {ANN_KEY: self.key, ANN_NODE: self.entry.node}
        if self.signature:
            annotations[ANN_SIGNATURE] = self.signature
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": Descriptor(CONFIG_TYPE, self.config_digest, len(self.config)).to_json(),
            "layers": layers,
            "annotations": annotations,
        }
        return canonical_json(doc)


def _titles(entry: Entry) -> dict[str, str]:
    titles = {f.digest: f.path for f in reversed(entry.files)}
    if entry.log:
        titles.setdefault(entry.log, ".crossplan.log")
    return titles


def blob_digests(entry: Entry) -> list[str]:
    """Every blake3 an entry needs: its files' (links included) and its log's."""
    digests = {f.digest for f in entry.files}
    if entry.log:
        digests.add(entry.log)
    return sorted(digests)


def encode(entry: Entry, blobs: Mapping[str, BlobRef]) -> Artifact:
    """The artifact for a local entry; ``blobs`` maps each blake3 to its sha256 and size."""
    refs = tuple(blobs[d] for d in blob_digests(entry))
    doc = entry.as_json()
    doc["schema"] = SCHEMA
    doc["blobs"] = {b.blake3: {"sha256": b.sha256, "size": b.size} for b in refs}
    return Artifact(entry.key, entry, refs, canonical_json(doc))


def parse_manifest(key: str, data: bytes) -> tuple[Descriptor, str | None]:
    """The config descriptor and signature of an action manifest; InvalidArtifact if foreign."""
    try:
        doc = json.loads(data)
        if doc.get("mediaType") != OCI_MANIFEST or doc.get("artifactType") != ARTIFACT_TYPE:
            kind = doc.get("artifactType")
            raise InvalidArtifact(f"not a crossplan action (artifactType {kind!r})")
        config = Descriptor.from_json(doc["config"])
        annotations = doc.get("annotations") or {}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidArtifact(f"malformed manifest: {exc}") from None
    if config.media_type != CONFIG_TYPE or not _SHA256.match(config.digest):
        raise InvalidArtifact(f"unexpected config {config.media_type} {config.digest}")
    if not 0 < config.size <= MAX_CONFIG_BYTES:
        raise InvalidArtifact(f"config size {config.size} out of range")
    if annotations.get(ANN_KEY, key) != key:
        raise InvalidArtifact(f"manifest is for key {annotations.get(ANN_KEY)!r}")
    sig = annotations.get(ANN_SIGNATURE)
    return config, sig if isinstance(sig, str) else None


def parse_config(key: str, config: bytes, signature: str | None) -> Artifact:
    """Check an entry JSON against the key it was fetched for; every blob must be named."""
    try:
        doc = json.loads(config)
        if doc.get("schema") != SCHEMA:
            raise InvalidArtifact(f"unknown entry schema {doc.get('schema')!r}")
        entry = Entry.from_json(doc)
        refs = {
            d: BlobRef(d, str(v["sha256"]), int(v["size"])) for d, v in doc["blobs"].items()
        }
    except InvalidArtifact:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidArtifact(f"malformed entry JSON: {exc!r}") from None
    if entry.key != key:
        raise InvalidArtifact(f"entry JSON is for key {entry.key}")
    needed = blob_digests(entry)
    missing = [d for d in needed if d not in refs]
    if missing:
        raise InvalidArtifact(f"entry JSON names no sha256 for blob {missing[0]}")
    for d in needed:
        r = refs[d]
        if not _HEX.match(d) or not _SHA256.match(r.sha256) or r.size < 0:
            raise InvalidArtifact(f"bad blob reference {d}: {r.sha256} ({r.size} bytes)")
    _check_files(entry, refs)
    return Artifact(key, entry, tuple(refs[d] for d in needed), config, signature)


def _check_files(entry: Entry, refs: Mapping[str, BlobRef]) -> None:
    """Paths stay inside the output dir, never under a symlink; plain modes; sizes agree."""
    links = {f.path for f in entry.files if f.link is not None}
    for f in entry.files:
        parts = PurePosixPath(f.path).parts
        if not parts or f.path.startswith("/") or ".." in parts or "\\" in f.path:
            raise InvalidArtifact(f"output path {f.path!r} escapes the output directory")
        if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            raise InvalidArtifact(f"output path {f.path!r} lies under a symlink")
        if f.mode & ~0o777:
            raise InvalidArtifact(f"output {f.path!r} has mode {oct(f.mode)}")
        if f.link is None and f.size != refs[f.digest].size:
            raise InvalidArtifact(f"output {f.path!r}: size {f.size} != blob size")

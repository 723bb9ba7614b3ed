"""Verified transfers of cache entries between the local store and a registry repository."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Protocol

from crossplan.backends.oci.descriptor import DigestMismatch, sha256_digest
from crossplan.backends.oci.mediatypes import OCI_MANIFEST
from crossplan.backends.oci.registry import RegistryError
from crossplan.cache.artifact import (
    Artifact,
    BlobRef,
    InvalidArtifact,
    blob_digests,
    encode,
    parse_config,
    parse_manifest,
    tag_for,
)
from crossplan.cache.signing import PublicKey, SigningKey, signed_message
from crossplan.cache.store import Entry, Store
from crossplan.hashing import hash_bytes

__all__ = ["Miss", "Registry", "Transfer"]


class Registry(Protocol):
    """What the cache needs of a registry client (``RegistryClient``; fakes in tests)."""

    registry: str

    def ping(self) -> None: ...
    def has_blob(self, repo: str, digest: str) -> bool: ...
    def get_blob(self, repo: str, digest: str) -> bytes: ...
    def upload_blob(self, repo: str, digest: str, data: bytes) -> None: ...
    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str] | None: ...
    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str: ...
    def close(self) -> None: ...


class Miss(Exception):
    """This key is not usable from the remote; the message says why (for a warning)."""


class Transfer:
    """One key's reads and writes against ``repo``: every byte from the registry is checked
    (sizes, sha256, blake3, signatures) before it reaches ``store``. Raises on failure:
    ``Miss``, ``DigestMismatch``, registry and OS errors (the caller turns them into
    warnings)."""

    def __init__(
        self, client: Registry, store: Store, repo: str, name: str, *,
        trusted_keys: tuple[PublicKey, ...] = (), signing_key: SigningKey | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.repo = repo
        self.name = name
        self.trusted_keys = trusted_keys
        self.signing_key = signing_key

    # -- reads -----------------------------------------------------------------------------
    def lookup(self, key: str) -> Artifact | None:
        """The verified artifact for ``key`` (manifest, entry JSON, signature), or None."""
        got = self.client.get_manifest(self.repo, tag_for(key))
        if got is None:
            return None
        try:
            config_desc, signature = parse_manifest(key, got[0])
        except InvalidArtifact as exc:
            raise Miss(f"remote cache entry {key} is unusable: {exc}; treated as a miss") from None
        self.check_signature(key, config_desc.digest, signature)
        try:
            config = self.client.get_blob(self.repo, config_desc.digest)
        except RegistryError as exc:
            if exc.status == 404:
                raise Miss(self.incomplete(key, config_desc.digest)) from None
            raise
        if sha256_digest(config) != config_desc.digest or len(config) != config_desc.size:
            raise DigestMismatch(f"entry JSON does not match {config_desc.digest}")
        try:
            return parse_config(key, config, signature)
        except InvalidArtifact as exc:
            raise Miss(f"remote cache entry {key} is unusable: {exc}; treated as a miss") from None

    def check_signature(self, key: str, config_digest: str, signature: str | None) -> None:
        trusted = self.trusted_keys
        if not trusted:
            return
        if signature is None:
            raise Miss(f"remote cache entry {key} is unsigned; refused (trusted_keys is set)")
        message = signed_message(key, config_digest)
        if not any(k.verify(message, signature) for k in trusted):
            signer = signature.rpartition(":")[0]
            raise Miss(
                f"remote cache entry {key} is signed by '{signer}', which does not verify "
                "against any trusted key; refused"
            )

    def incomplete(self, key: str, digest: str) -> str:
        return (
            f"remote cache entry {key} is incomplete: blob {digest} is missing from "
            f"{self.name}; treated as a miss"
        )

    def fetch_blob(self, key: str, ref: BlobRef) -> bool:
        """Download one blob of ``key``'s entry, verify it, put it into the store."""
        try:
            data = self.client.get_blob(self.repo, ref.sha256)
        except RegistryError as exc:
            if exc.status == 404:
                raise Miss(self.incomplete(key, ref.sha256)) from None
            raise
        # Whatever the client checked, check again: the registry is not trusted.
        if len(data) != ref.size:
            raise DigestMismatch(f"blob {ref.sha256} has {len(data)} bytes, expected {ref.size}")
        if "sha256:" + hashlib.sha256(data).hexdigest() != ref.sha256:
            raise DigestMismatch(f"blob {ref.sha256} does not hash to its sha256")
        if hash_bytes(data) != ref.blake3:
            raise DigestMismatch(f"blob {ref.sha256} does not hash to blake3 {ref.blake3}")
        stored = self.store.put_bytes(data)
        if stored != ref.blake3:  # pragma: no cover - the hash above says otherwise
            self.store.evict_blob(stored)
            raise DigestMismatch(f"blob {ref.sha256} changed while being stored")
        return True

    # -- writes ----------------------------------------------------------------------------
    def push(self, entry: Entry) -> bool:
        """Upload ``entry``'s blobs (skipping those present), entry JSON, then the tag."""
        refs: dict[str, BlobRef] = {}
        for digest in blob_digests(entry):
            data = self.store.blob_path(digest).read_bytes()
            if hash_bytes(data) != digest:
                raise Miss(
                    f"not pushing {entry.key}: local blob {digest} is corrupt "
                    "(run `plan cache verify`)"
                )
            refs[digest] = BlobRef(digest, sha256_digest(data), len(data))
            self.upload(refs[digest].sha256, data)
        art = encode(entry, refs)
        key = self.signing_key
        if key is not None:
            art = replace(art, signature=key.sign(signed_message(entry.key, art.config_digest)))
        self.upload(art.config_digest, art.config)
        self.client.put_manifest(self.repo, tag_for(entry.key), art.manifest(), OCI_MANIFEST)
        return True

    def upload(self, digest: str, data: bytes) -> None:
        if not self.client.has_blob(self.repo, digest):
            self.client.upload_blob(self.repo, digest, data)

"""Verified transfers of cache entries between the local store and a registry repository."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import blake3
import httpx

from crossplan.backends.oci.descriptor import DigestMismatch, sha256_digest
from crossplan.backends.oci.mediatypes import OCI_MANIFEST
from crossplan.backends.oci.registry import CHUNK, Opener, RegistryError, file_opener
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
from crossplan.cache.store import BlobMismatch, Entry, Store

__all__ = ["Miss", "Registry", "StreamingRegistry", "Transfer"]

FETCH_ATTEMPTS = 3  # a download cut short midway is started over (the store keeps nothing)


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


@runtime_checkable
class StreamingRegistry(Registry, Protocol):
    """A registry client that streams blobs both ways (``RegistryClient`` does): memory
    stays a chunk whatever the blob size. Clients without these get and send bytes."""

    def iter_blob(self, repo: str, digest: str, *, size: int | None = None) -> Iterator[bytes]: ...
    def upload_blob_from(self, repo: str, digest: str, size: int, open_blob: Opener) -> None: ...


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
            config = self._small_blob(config_desc.digest, config_desc.size)
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

    def _small_blob(self, digest: str, size: int) -> bytes:
        """A blob known to be small (``size`` is checked by the caller): a streaming client
        stops reading past it, so a registry cannot make us hold more."""
        client = self.client
        if isinstance(client, StreamingRegistry):
            return b"".join(client.iter_blob(self.repo, digest, size=size))
        return client.get_blob(self.repo, digest)

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
        """Download one blob of ``key``'s entry, verify it, put it into the store.

        Streamed: bytes go to the store's tmp/ as they arrive, hashed (size, sha256, blake3)
        on the way; only a blob that matches all three is moved into place."""
        client = self.client
        if not isinstance(client, StreamingRegistry):
            return self._fetch_bytes(key, ref)
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            try:
                chunks = client.iter_blob(self.repo, ref.sha256, size=ref.size)
                stored, _ = self.store.put_stream(_checked(chunks, ref), expect=ref.blake3)
            except RegistryError as exc:
                if exc.status == 404:
                    raise Miss(self.incomplete(key, ref.sha256)) from None
                raise
            except BlobMismatch:
                raise _not_blake3(ref) from None
            except httpx.TransportError:  # cut short midway: nothing was stored
                if attempt == FETCH_ATTEMPTS:
                    raise
                continue
            return stored == ref.blake3
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_bytes(self, key: str, ref: BlobRef) -> bool:
        try:
            data = self.client.get_blob(self.repo, ref.sha256)
        except RegistryError as exc:
            if exc.status == 404:
                raise Miss(self.incomplete(key, ref.sha256)) from None
            raise
        try:
            stored, _ = self.store.put_stream(_checked(iter((data,)), ref), expect=ref.blake3)
        except BlobMismatch:
            raise _not_blake3(ref) from None
        return stored == ref.blake3

    # -- writes ----------------------------------------------------------------------------
    def push(self, entry: Entry) -> bool:
        """Upload ``entry``'s blobs (skipping those present), entry JSON, then the tag.

        Blobs are read from the store a chunk at a time, both to hash them (blake3: the
        local copy must be intact; sha256: the registry's name) and to upload them."""
        refs: dict[str, BlobRef] = {}
        for digest in blob_digests(entry):
            path = self.store.blob_path(digest)
            sha256, size, actual = _hash_file(path)
            if actual != digest:
                raise Miss(
                    f"not pushing {entry.key}: local blob {digest} is corrupt "
                    "(run `plan cache verify`)"
                )
            refs[digest] = BlobRef(digest, sha256, size)
            self.upload(sha256, size, file_opener(path))
        art = encode(entry, refs)
        key = self.signing_key
        if key is not None:
            art = replace(art, signature=key.sign(signed_message(entry.key, art.config_digest)))
        config = art.config
        self.upload(art.config_digest, len(config), lambda: io.BytesIO(config))
        self.client.put_manifest(self.repo, tag_for(entry.key), art.manifest(), OCI_MANIFEST)
        return True

    def upload(self, digest: str, size: int, open_blob: Opener) -> None:
        if self.client.has_blob(self.repo, digest):
            return
        if isinstance(self.client, StreamingRegistry):
            self.client.upload_blob_from(self.repo, digest, size, open_blob)
        else:
            with open_blob() as f:
                self.client.upload_blob(self.repo, digest, f.read())


def _not_blake3(ref: BlobRef) -> DigestMismatch:
    return DigestMismatch(f"blob {ref.sha256} does not hash to blake3 {ref.blake3}")


def _checked(chunks: Iterator[bytes], ref: BlobRef) -> Iterator[bytes]:
    """``chunks``, passed on while counted and hashed (sha256): raises DigestMismatch as soon
    as there are too many bytes, or after the last if the size or sha256 is not ``ref``'s.
    (Whatever the client checked, check again: the registry is not trusted.)"""
    h = hashlib.sha256()
    got = 0
    for chunk in chunks:
        got += len(chunk)
        if got > ref.size:
            raise DigestMismatch(f"blob {ref.sha256} has more than the expected {ref.size} bytes")
        h.update(chunk)
        yield chunk
    if got != ref.size:
        raise DigestMismatch(f"blob {ref.sha256} has {got} bytes, expected {ref.size}")
    if "sha256:" + h.hexdigest() != ref.sha256:
        raise DigestMismatch(f"blob {ref.sha256} does not hash to its sha256")


def _hash_file(path: Path) -> tuple[str, int, str]:
    """(sha256 digest, size, blake3) of a file, read a chunk at a time (no mmap: a mapped
    file counts in the process's resident memory)."""
    sha, b3 = hashlib.sha256(), blake3.blake3()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            b3.update(chunk)
            size += len(chunk)
    return "sha256:" + sha.hexdigest(), size, b3.hexdigest()

"""An in-memory registry for remote cache unit tests (what ``RegistryClient`` offers)."""

from __future__ import annotations

import threading
import time

from crossplan.backends.oci.descriptor import sha256_digest
from crossplan.backends.oci.mediatypes import OCI_MANIFEST
from crossplan.backends.oci.registry import RegistryError

__all__ = ["FakeRegistry"]


class FakeRegistry:
    """A registry in memory. ``fail[op]`` raises; ``serve[digest]`` replaces what a GET
    returns (corruption); ``delay`` makes look-ups slow enough to see them overlap."""

    registry = "fake.test:5000"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.fail: dict[str, Exception] = {}
        self.serve: dict[str, bytes] = {}
        self.calls: list[tuple[str, str]] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        self._active = 0
        self.max_active = 0

    def _call(self, op: str, arg: str) -> None:
        with self._lock:
            self.calls.append((op, arg))
        if op in self.fail:
            raise self.fail[op]

    def ops(self, op: str) -> list[str]:
        return [a for o, a in self.calls if o == op]

    def ping(self) -> None:
        self._call("ping", "")

    def has_blob(self, repo: str, digest: str) -> bool:
        self._call("has_blob", digest)
        return digest in self.blobs

    def get_blob(self, repo: str, digest: str) -> bytes:
        self._call("get_blob", digest)
        if digest not in self.blobs:
            raise RegistryError(f"GET blob {digest} failed with HTTP 404", status=404)
        return self.serve.get(digest, self.blobs[digest])

    def upload_blob(self, repo: str, digest: str, data: bytes) -> None:
        self._call("upload_blob", digest)
        assert sha256_digest(data) == digest
        self.blobs[digest] = data

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str] | None:
        with self._lock:
            self._active += 1
            self.max_active = max(self.max_active, self._active)
        try:
            time.sleep(self.delay)
            self._call("get_manifest", ref)
            data = self.manifests.get(ref)
            return (data, OCI_MANIFEST) if data is not None else None
        finally:
            with self._lock:
                self._active -= 1

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        self._call("put_manifest", ref)
        self.manifests[ref] = data
        return sha256_digest(data)

    def close(self) -> None:
        pass

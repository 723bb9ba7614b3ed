"""An OCI distribution API client: blobs, manifests, tags; verified reads, typed errors."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import httpx

from crossplan.backends.oci._transport import (
    AuthSession,
    Body,
    CredentialsProvider,
    RegistryDenied,
    RegistryUnreachable,
)
from crossplan.backends.oci.auth import load_credentials
from crossplan.backends.oci.descriptor import DigestMismatch, sha256_digest, verify_digest
from crossplan.backends.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES
from crossplan.errors import EnvironmentProblem

__all__ = [
    "CHUNK",
    "MANIFEST_ACCEPT",
    "UPLOAD_CHUNK",
    "Opener",
    "RegistryClient",
    "RegistryDenied",
    "RegistryError",
    "RegistryUnreachable",
    "file_opener",
]

MANIFEST_ACCEPT = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_RANGE = re.compile(r"^(?:bytes=)?0-(\d+)$")
CHUNK = 1 << 20
"""Bytes read from disk or the network at a time when streaming a blob."""
UPLOAD_CHUNK = 64 << 20
"""Blobs larger than this are uploaded in PATCH chunks of this size (each streamed)."""
Opener = Callable[[], BinaryIO]
"""Opens a blob's bytes for reading from the start (called once per request that sends them)."""


class RegistryError(EnvironmentProblem):
    """The registry answered, but not the way the distribution spec says it should."""

    def __init__(
        self, message: str, *, status: int | None = None, hint: str | None = None
    ) -> None:
        self.status = status
        super().__init__(message, hint=hint)


class RegistryClient:
    """Talks to one registry. Every read by digest is verified; headers are never trusted.

    ``transport`` lets tests pass ``httpx.MockTransport``; ``sleep`` lets them skip backoff.
    """

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        transport: httpx.BaseTransport | None = None,
        credentials: CredentialsProvider = load_credentials,
        attempts: int = 5,
        backoff: float = 0.25,
        sleep: Callable[[float], None] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.session = AuthSession(
            registry,
            insecure=insecure,
            transport=transport,
            credentials=credentials,
            attempts=attempts,
            backoff=backoff,
            sleep=sleep,
            timeout=timeout,
        )
        self.registry = registry

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def ping(self) -> None:
        """GET /v2/: raises EnvironmentProblem if the registry is unreachable or refuses us."""
        resp = self.session.request("GET", "/v2/", scope="", what="ping")
        if resp.status_code not in (200, 401):
            raise self._fail(resp, "ping /v2/")

    # blobs

    def has_blob(self, repo: str, digest: str) -> bool:
        what = f"HEAD blob {self.registry}/{repo}@{digest}"
        resp = self._do("HEAD", f"/v2/{repo}/blobs/{digest}", repo, "pull", what)
        if resp.status_code == 404:
            return False
        if resp.status_code != 200:
            raise self._fail(resp, what)
        return True

    def get_blob(self, repo: str, digest: str) -> bytes:
        what = f"GET blob {self.registry}/{repo}@{digest}"
        resp = self._do("GET", f"/v2/{repo}/blobs/{digest}", repo, "pull", what)
        if resp.status_code != 200:
            raise self._fail(resp, what)
        return verify_digest(resp.content, digest, what=what)

    def iter_blob(self, repo: str, digest: str, *, size: int | None = None) -> Iterator[bytes]:
        """A blob's bytes as they arrive (at most ``CHUNK`` at a time), never all in memory.

        The sha256 is checked after the last chunk: a mismatch raises DigestMismatch from
        the iteration (so does a body longer than ``size``), and a consumer must discard
        what it was given when iterating raises. A body cut short raises httpx errors."""
        _sha256_hex(digest, what=f"blob {digest}")
        what = f"GET blob {self.registry}/{repo}@{digest}"
        resp = self._do("GET", f"/v2/{repo}/blobs/{digest}", repo, "pull", what, stream=True)
        try:
            if resp.status_code != 200:
                resp.read()  # an error document: small
                raise self._fail(resp, what)
            h = hashlib.sha256()
            got = 0
            for chunk in resp.iter_bytes(CHUNK):
                got += len(chunk)
                if size is not None and got > size:
                    raise DigestMismatch(f"{what}: more than the expected {size} bytes")
                h.update(chunk)
                yield chunk
            if "sha256:" + h.hexdigest() != digest:
                raise DigestMismatch(
                    f"{what}: content has digest sha256:{h.hexdigest()}, expected {digest}",
                    hint="the source is corrupt or was modified; refusing to use it",
                )
        finally:
            resp.close()

    def upload_blob_from(
        self, repo: str, digest: str, size: int, open_blob: Opener, *,
        chunk_size: int = UPLOAD_CHUNK,
    ) -> None:
        """Upload ``size`` bytes read from ``open_blob()``, streamed: never all in memory.

        Up to ``chunk_size``: POST, then one PUT ``?digest=`` carrying the bytes. Larger: the
        chunked upload (POST; PATCH each chunk with ``Content-Range``, following each new
        ``Location``; PUT ``?digest=`` with no body). The registry checks the digest before
        committing, so bytes that changed on the way never land under ``digest``. A session
        that fails midway is started over once, as one streamed PUT (which every registry
        takes, should it mishandle chunks)."""
        what = f"upload blob {self.registry}/{repo}@{digest}"
        chunked = size > chunk_size
        for _ in range(2):
            start = self._do("POST", f"/v2/{repo}/blobs/uploads/", repo, "pull,push", what)
            if start.status_code != 202 or "location" not in start.headers:
                raise self._fail(start, what)
            url = httpx.URL(self.session.base).join(start.headers["location"])
            body: Body = b""
            headers = {"Content-Type": "application/octet-stream", "Content-Length": "0"}
            if chunked:
                resp, next_url = self._patch_chunks(repo, url, size, open_blob, chunk_size, what)
                if next_url is None:
                    chunked = False
                    continue
                url = next_url
            else:
                body = _reader(open_blob, 0, size)
                headers["Content-Length"] = str(size)
            url = url.copy_merge_params({"digest": digest})
            resp = self._do("PUT", str(url), repo, "pull,push", what, headers, body)
            if resp.status_code in (201, 204):
                return
            if resp.status_code != 404 and not chunked:
                break
            chunked = False
        raise self._fail(resp, what)

    def _patch_chunks(
        self, repo: str, url: httpx.URL, size: int, open_blob: Opener, chunk_size: int, what: str
    ) -> tuple[httpx.Response, httpx.URL | None]:
        """PATCH every chunk; (last response, URL to finish at), or (failure, None)."""
        offset = 0
        resp = httpx.Response(500)
        while offset < size:
            n = min(chunk_size, size - offset)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + n - 1}",
                "Content-Length": str(n),
            }
            body = _reader(open_blob, offset, n)
            resp = self._do("PATCH", str(url), repo, "pull,push", what, headers, body)
            if resp.status_code != 202 or "location" not in resp.headers:
                return resp, None
            got = _RANGE.match(resp.headers.get("range", f"0-{offset + n - 1}").strip())
            if got is None or int(got.group(1)) != offset + n - 1:
                return resp, None  # the registry holds something else than we sent
            url = httpx.URL(self.session.base).join(resp.headers["location"])
            offset += n
        return resp, url

    def upload_blob(self, repo: str, digest: str, data: bytes) -> None:
        """Monolithic upload: POST to open a session, PUT the bytes with ``?digest=``."""
        what = f"upload blob {self.registry}/{repo}@{digest}"
        for _ in range(2):  # the session can vanish if the PUT is retried; start over once
            start = self._do("POST", f"/v2/{repo}/blobs/uploads/", repo, "pull,push", what)
            if start.status_code != 202 or "location" not in start.headers:
                raise self._fail(start, what)
            url = httpx.URL(self.session.base).join(start.headers["location"])
            url = url.copy_merge_params({"digest": digest})
            headers = {"Content-Type": "application/octet-stream"}
            resp = self._do("PUT", str(url), repo, "pull,push", what, headers, data)
            if resp.status_code in (201, 204):
                return
            if resp.status_code != 404:
                break
        raise self._fail(resp, what)

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount; False when the registry wants an upload instead."""
        what = f"mount blob {digest} from {from_repo} into {self.registry}/{repo}"
        scope = f"repository:{repo}:pull,push repository:{from_repo}:pull"
        resp = self.session.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scope=scope,
            what=what,
            params={"mount": digest, "from": from_repo},
        )
        self._check_denied(resp, what)
        return resp.status_code == 201

    # manifests

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str] | None:
        """(bytes, media type) of a manifest or index; None if absent. Verified when by digest."""
        what = f"GET manifest {self.registry}/{repo}:{ref}"
        headers = {"Accept": MANIFEST_ACCEPT}
        resp = self._do("GET", f"/v2/{repo}/manifests/{ref}", repo, "pull", what, headers)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, what)
        if ref.startswith("sha256:"):
            verify_digest(resp.content, ref, what=what)
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        return resp.content, media_type

    def has_manifest(self, repo: str, digest: str) -> bool:
        what = f"HEAD manifest {self.registry}/{repo}@{digest}"
        headers = {"Accept": MANIFEST_ACCEPT}
        resp = self._do("HEAD", f"/v2/{repo}/manifests/{digest}", repo, "pull", what, headers)
        if resp.status_code == 404:
            return False
        if resp.status_code != 200:
            raise self._fail(resp, what)
        return True

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or its digest; returns the digest we computed."""
        what = f"PUT manifest {self.registry}/{repo}:{ref}"
        headers = {"Content-Type": media_type}
        path = f"/v2/{repo}/manifests/{ref}"
        resp = self._do("PUT", path, repo, "pull,push", what, headers, data)
        if resp.status_code not in (200, 201, 202):
            raise self._fail(resp, what)
        return sha256_digest(data)

    def referrers(self, repo: str, digest: str) -> bytes | None:
        """The OCI 1.1 referrers index of ``digest``; None when the registry has no
        referrers API (404: use the ``sha256-<hex>`` referrers tag schema instead)."""
        what = f"GET referrers {self.registry}/{repo}@{digest}"
        headers = {"Accept": "application/vnd.oci.image.index.v1+json"}
        resp = self._do("GET", f"/v2/{repo}/referrers/{digest}", repo, "pull", what, headers)
        if resp.status_code in (404, 405):
            return None
        if resp.status_code != 200:
            raise self._fail(resp, what)
        return resp.content

    def delete_manifest(self, repo: str, digest: str) -> None:
        what = f"DELETE manifest {self.registry}/{repo}@{digest}"
        resp = self._do("DELETE", f"/v2/{repo}/manifests/{digest}", repo, "delete", what)
        if resp.status_code not in (200, 202, 404):
            raise self._fail(resp, what)

    def delete_blob(self, repo: str, digest: str) -> None:
        what = f"DELETE blob {self.registry}/{repo}@{digest}"
        resp = self._do("DELETE", f"/v2/{repo}/blobs/{digest}", repo, "delete", what)
        if resp.status_code not in (200, 202, 404):
            raise self._fail(resp, what)

    def list_tags(self, repo: str) -> list[str]:
        """All tags of ``repo`` (following pagination); empty if the repository is unknown."""
        what = f"list tags of {self.registry}/{repo}"
        tags: list[str] = []
        url: str | None = f"/v2/{repo}/tags/list"
        while url:
            resp = self._do("GET", url, repo, "pull", what)
            if resp.status_code == 404:
                return tags
            if resp.status_code != 200:
                raise self._fail(resp, what)
            tags.extend(resp.json().get("tags") or [])
            match = _NEXT.search(resp.headers.get("link", ""))
            url = str(httpx.URL(self.session.base).join(match.group(1))) if match else None
        return tags

    # plumbing

    def _do(
        self,
        method: str,
        url: str,
        repo: str,
        actions: str,
        what: str,
        headers: dict[str, str] | None = None,
        content: Body = None,
        *,
        stream: bool = False,
    ) -> httpx.Response:
        scope = f"repository:{repo}:{actions}"
        resp = self.session.request(
            method, url, scope=scope, what=what, headers=headers, content=content, stream=stream
        )
        if stream and resp.status_code in (401, 403):
            resp.close()
        self._check_denied(resp, what)
        return resp

    def _check_denied(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code in (401, 403):
            raise self.session.denied(resp, what)

    def _fail(self, resp: httpx.Response, what: str) -> RegistryError:
        detail = ""
        try:
            errors = resp.json().get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except ValueError:
            detail = resp.text[:200]
        return RegistryError(
            f"registry {self.registry}: {what} failed with HTTP {resp.status_code}"
            + (f" ({detail})" if detail else ""),
            status=resp.status_code,
            hint="retry later; if it persists, check the registry's logs",
        )


def file_opener(path: Path) -> Opener:
    """An Opener for a file's bytes."""

    def open_blob() -> BinaryIO:
        return path.open("rb")

    return open_blob


def _sha256_hex(digest: str, *, what: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64:
        raise EnvironmentProblem(
            f"unsupported digest '{digest}' for {what}", hint="only sha256 digests are supported"
        )
    return hexdigest


def _reader(open_blob: Opener, offset: int, length: int) -> Callable[[], Iterator[bytes]]:
    """A body: ``length`` bytes from ``offset``, read ``CHUNK`` at a time (fresh per call)."""

    def chunks() -> Iterator[bytes]:
        with open_blob() as f:
            f.seek(offset)
            left = length
            while left:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(f"blob source ended {left} bytes early")
                left -= len(chunk)
                yield chunk

    return chunks

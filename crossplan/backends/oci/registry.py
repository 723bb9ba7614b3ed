"""An OCI distribution API client: blobs, manifests, tags; verified reads, typed errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import TracebackType

import httpx

from crossplan.backends.oci._transport import (
    AuthSession,
    CredentialsProvider,
    RegistryDenied,
    RegistryUnreachable,
)
from crossplan.backends.oci.auth import load_credentials
from crossplan.backends.oci.descriptor import sha256_digest, verify_digest
from crossplan.backends.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES
from crossplan.errors import EnvironmentProblem

__all__ = [
    "MANIFEST_ACCEPT",
    "RegistryClient",
    "RegistryDenied",
    "RegistryError",
    "RegistryUnreachable",
]

MANIFEST_ACCEPT = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


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
        content: bytes | None = None,
    ) -> httpx.Response:
        scope = f"repository:{repo}:{actions}"
        resp = self.session.request(
            method, url, scope=scope, what=what, headers=headers, content=content
        )
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

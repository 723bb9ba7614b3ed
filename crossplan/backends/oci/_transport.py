"""HTTP with retries, backoff and registry auth (anonymous, Basic, Bearer token) over httpx."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from crossplan.backends.oci.auth import Credentials, load_credentials, parse_challenge
from crossplan.backends.oci.reference import DOCKER_HUB, is_loopback
from crossplan.errors import EnvironmentProblem

__all__ = [
    "RETRY_STATUS",
    "AuthSession",
    "Body",
    "CredentialsProvider",
    "RegistryDenied",
    "RegistryUnreachable",
]

RETRY_STATUS = frozenset({429, 502, 503, 504})
CredentialsProvider = Callable[[str], Credentials | None]
Body = bytes | Callable[[], Iterator[bytes]] | None
"""A request body: bytes, or a function giving a fresh iterator of chunks for each attempt
(so a retried or re-authenticated request streams its body again, never holding it)."""


class RegistryUnreachable(EnvironmentProblem):
    """No answer from the registry (connection refused, DNS, timeout) after every retry."""


class RegistryDenied(EnvironmentProblem):
    """The registry (or its token server) answered 401/403: log in or fix permissions."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        self.status = status
        super().__init__(message, hint=hint)


class AuthSession:
    """Sends requests to one registry; retries transient failures; answers auth challenges."""

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
        self.registry = registry
        host = "registry-1.docker.io" if registry == DOCKER_HUB else registry
        self.scheme = "http" if insecure or is_loopback(registry) else "https"
        self.base = f"{self.scheme}://{host}"
        self._transport = transport
        self._timeout = timeout
        self._http: httpx.Client | None = None
        self._credentials = credentials
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep or time.sleep
        self._tokens: dict[str, str] = {}
        self._basic = False

    @property
    def http(self) -> httpx.Client:
        """The connection pool; opened on first use, and again after ``close()``."""
        if self._http is None:
            self._http = httpx.Client(
                transport=self._transport, timeout=self._timeout, follow_redirects=True
            )
        return self._http

    def close(self) -> None:
        """Close connections; auth state is kept and the next request reconnects.

        An injected transport belongs to the caller and is left open.
        """
        if self._http is not None and self._transport is None:
            self._http.close()
            self._http = None

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        what: str,
        headers: Mapping[str, str] | None = None,
        content: Body = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One logical request: retries 429/502/503/504 and connection errors; answers one 401.

        With ``stream`` the response body is not read: the caller iterates it and must
        close the response (retries and challenges close the ones they drop)."""
        full = url if "://" in url else self.base + url
        challenged = False
        attempt = 0
        while True:
            hdrs = {**(headers or {}), **self._auth_header(scope)}
            body = content() if callable(content) else content
            try:
                req = self.http.build_request(
                    method, full, headers=hdrs, content=body, params=params
                )
                resp = self.http.send(req, stream=stream)
            except httpx.TransportError as exc:
                attempt += 1
                if attempt >= self._attempts:
                    raise self._unreachable(what, exc) from None
                self._sleep(self._delay(attempt, None))
                continue
            if resp.status_code == 401 and not challenged:
                challenged = True
                if self._answer(resp, scope, what):
                    resp.close()
                    continue
            if resp.status_code in RETRY_STATUS:
                attempt += 1
                if attempt < self._attempts:
                    resp.close()
                    self._sleep(self._delay(attempt, resp.headers.get("retry-after")))
                    continue
            return resp

    def denied(self, resp: httpx.Response, what: str) -> RegistryDenied:
        """The error for a 401/403 answer."""
        return RegistryDenied(
            f"registry {self.registry} denied access ({what}): HTTP {resp.status_code}",
            status=resp.status_code,
            hint=f"log in with `docker login {self.registry}` (credentials are read from "
            "~/.docker/config.json and its credential helpers) or check your permissions",
        )

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), 30.0)
        return float(min(self._backoff * 2 ** (attempt - 1), 10.0))

    def _unreachable(self, what: str, exc: Exception) -> RegistryUnreachable:
        return RegistryUnreachable(
            f"cannot reach registry {self.registry} ({what}): {exc or type(exc).__name__}",
            hint=f"is the registry running? try `curl {self.base}/v2/`",
        )

    def _auth_header(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        creds = self._creds
        if self._basic and creds is not None:
            return {"Authorization": "Basic " + _basic(creds)}
        return {}

    def _creds_for_registry(self) -> Credentials | None:
        if not self._creds_loaded:
            self._creds = self._credentials(self.registry)
            self._creds_loaded = True
        return self._creds

    def _answer(self, resp: httpx.Response, scope: str, what: str) -> bool:
        """Set up auth from a 401 challenge; False when there is nothing more to try."""
        scheme, params = parse_challenge(resp.headers.get("www-authenticate", ""))
        creds = self._creds_for_registry()
        if scheme == "basic":
            if creds is None or self._basic:
                return False
            self._basic = True
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        scopes = [s for s in {*scope.split(" "), *params.get("scope", "").split(" ")} if s]
        self._tokens[scope] = self._fetch_token(params, sorted(scopes), creds, what)
        return True

    def _fetch_token(
        self, params: dict[str, str], scopes: list[str], creds: Credentials | None, what: str
    ) -> str:
        query: list[tuple[str, str | int | float | bool | None]] = [("scope", s) for s in scopes]
        if params.get("service"):
            query.append(("service", params["service"]))
        try:
            if creds is not None and creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token}
                form.update(client_id="crossplan", scope=" ".join(scopes))
                form.update({"service": params["service"]} if params.get("service") else {})
                resp = self.http.post(params["realm"], data=form)
            else:
                headers = {"Authorization": "Basic " + _basic(creds)} if creds else {}
                resp = self.http.get(params["realm"], params=query, headers=headers)
        except httpx.TransportError as exc:
            raise self._unreachable(f"token for {what}", exc) from None
        if resp.status_code in (401, 403):
            raise self.denied(resp, f"token for {what}")
        if resp.status_code != 200:
            raise EnvironmentProblem(
                f"token server {params['realm']} answered HTTP {resp.status_code} ({what})",
                hint="retry later, or check the registry's auth configuration",
            )
        body: dict[str, Any] = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise EnvironmentProblem(f"token server {params['realm']} returned no token")
        return str(token)


def _basic(creds: Credentials) -> str:
    return base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()

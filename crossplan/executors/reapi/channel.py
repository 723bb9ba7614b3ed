"""The gRPC connection to a REAPI endpoint: ``grpc://`` / ``grpcs://`` URLs, TLS files, auth
headers, retries with exponential backoff on UNAVAILABLE, and gRPC errors turned into
crossplan's (exit 3 for an unreachable endpoint or a missing capability)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from crossplan.errors import EnvironmentProblem
from crossplan.executors.reapi.settings import Endpoint

__all__ = ["RETRYABLE", "Endpoint", "Retrying", "open_channel", "unreachable"]

T = TypeVar("T")
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
_MAX_MESSAGE = 64 << 20


def open_channel(ep: Endpoint) -> grpc.Channel:
    opts = [("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE)]
    if not ep.tls:
        channel = grpc.insecure_channel(ep.target, options=opts)
    else:
        def read(p: str | None) -> bytes | None:
            if not p:
                return None
            try:
                with open(os.path.expanduser(p), "rb") as f:
                    return f.read()
            except OSError as exc:
                raise EnvironmentProblem(
                    f"[execution] TLS file {p} cannot be read: {exc.strerror}",
                    hint="server_cert, client_cert and client_key are PEM files, relative "
                    "to plan.toml") from None

        creds = grpc.ssl_channel_credentials(
            read(ep.server_cert), read(ep.client_key), read(ep.client_cert))
        channel = grpc.secure_channel(ep.target, creds, options=opts)
    if ep.headers:
        channel = grpc.intercept_channel(channel, _Headers(ep.headers))
    return channel


class _Headers(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
               grpc.StreamUnaryClientInterceptor):  # type: ignore[misc]
    """Adds the auth headers to every call's metadata."""

    def __init__(self, headers: tuple[tuple[str, str], ...]) -> None:
        self.headers = headers

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        meta = list(details.metadata or ()) + list(self.headers)
        return _Details(details.method, details.timeout, meta, details.credentials,
                        details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, cont, details, request):  # type: ignore[no-untyped-def]
        return cont(self._details(details), request)

    def intercept_unary_stream(self, cont, details, request):  # type: ignore[no-untyped-def]
        return cont(self._details(details), request)

    def intercept_stream_unary(self, cont, details, requests):  # type: ignore[no-untyped-def]
        return cont(self._details(details), requests)


@dataclass(frozen=True)
class _Details(grpc.ClientCallDetails):  # type: ignore[misc]
    method: str
    timeout: float | None
    metadata: list[tuple[str, str]]
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def unreachable(ep: Endpoint, exc: grpc.RpcError, step: str | None = None) -> EnvironmentProblem:
    """The endpoint did not answer (after the retries)."""
    detail = exc.details() if hasattr(exc, "details") else str(exc)
    hint = ("start the cluster (scripts/reapi-env.sh up), fix [execution] remote, or build "
            "locally with --executor local")
    if "CERTIFICATE" in detail or "handshake" in detail.lower():
        hint = ("the server's TLS certificate was not accepted: point [execution] server_cert "
                "at the CA that signed it (and client_cert/client_key if it asks for one)")
    return EnvironmentProblem(
        f"cannot reach the remote execution endpoint {ep.url} (instance "
        f"'{ep.instance}'): {detail}", step=step, hint=hint)


class Retrying:
    """Calls a gRPC function, retrying UNAVAILABLE/RESOURCE_EXHAUSTED with exponential backoff;
    ``sleep`` is injectable (tests)."""

    def __init__(self, ep: Endpoint, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ep = ep
        self.sleep = sleep

    def __call__(self, fn: Callable[[], T], step: str | None = None) -> T:
        delay = self.ep.backoff
        for attempt in range(self.ep.retries + 1):
            try:
                return fn()
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code not in RETRYABLE or attempt == self.ep.retries:
                    if code in RETRYABLE:
                        raise unreachable(self.ep, exc, step) from None
                    raise
                self.sleep(delay)
                delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")

"""Which executor a run uses and, for ``remote``, the REAPI endpoint: ``--executor``, then
``CROSSPLAN_EXECUTOR``, then ``[execution]``; the endpoint from ``[execution] remote`` or
``CROSSPLAN_EXECUTION_REMOTE`` (no gRPC import here: local runs never load it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.recipes.execution import ExecutionConfig

__all__ = ["Endpoint", "endpoint_for", "resolve_headers"]

EXECUTORS = ("local", "remote")


@dataclass(frozen=True)
class Endpoint:
    """Where the cluster is and how to talk to it (from ``[execution]`` and the environment)."""

    url: str  # grpc://host:port or grpcs://host:port
    instance: str = ""
    server_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    retries: int = 6
    backoff: float = 0.25  # first delay; doubled each retry, capped at 4 s
    queue_timeout: float = 600.0
    properties: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    system_toolchains: str = "local"

    @property
    def target(self) -> str:
        for scheme in ("grpcs://", "grpc://", "https://", "http://"):
            if self.url.startswith(scheme):
                return self.url[len(scheme):].rstrip("/")
        return self.url

    @property
    def tls(self) -> bool:
        return self.url.startswith(("grpcs://", "https://")) or self.server_cert is not None


def resolve_headers(headers: Mapping[str, str], environ: Mapping[str, str]) -> tuple[
        tuple[str, str], ...]:
    """Header values ``env:NAME`` are read from the environment (secrets stay out of files)."""
    out = []
    for name, value in sorted(headers.items()):
        if value.startswith("env:"):
            var = value[4:]
            if var not in environ:
                raise EnvironmentProblem(
                    f"[execution] header '{name}' reads ${var}, which is not set",
                    hint=f"export {var}=... (the token for the REAPI endpoint)",
                )
            value = environ[var]
        out.append((name.lower(), value))
    return tuple(out)



def endpoint_for(
    cfg: ExecutionConfig, executor: str | None, environ: Mapping[str, str], *, label: str = "",
) -> Endpoint | None:
    """The endpoint when the run executes remotely, else None."""
    chosen = executor or environ.get("CROSSPLAN_EXECUTOR") or cfg.executor
    if chosen not in EXECUTORS:
        raise RecipeError(f"unknown executor '{chosen}'", file=label or None,
                          hint="--executor local|remote (or CROSSPLAN_EXECUTOR)")
    if chosen == "local":
        return None
    url = environ.get("CROSSPLAN_EXECUTION_REMOTE") or cfg.remote
    if not url:
        raise RecipeError(
            "--executor remote needs an endpoint", file=label or None,
            hint='set [execution] remote = "grpc://host:port" (or CROSSPLAN_EXECUTION_REMOTE)')
    if not url.startswith(("grpc://", "grpcs://", "http://", "https://")):
        raise RecipeError(f"[execution] remote '{url}' is not a grpc:// or grpcs:// URL",
                          file=label or None, hint='e.g. remote = "grpc://127.0.0.1:50051"')
    instance = environ.get("CROSSPLAN_EXECUTION_INSTANCE", cfg.instance)

    def path(p: str | None) -> str | None:  # relative to plan.toml, ~ expanded
        if p is None:
            return None
        expanded = os.path.expanduser(p)
        if label and not os.path.isabs(expanded):
            return os.path.join(os.path.dirname(os.path.abspath(label)), expanded)
        return expanded

    return Endpoint(
        url=url, instance=instance, server_cert=path(cfg.server_cert),
        client_cert=path(cfg.client_cert), client_key=path(cfg.client_key),
        headers=resolve_headers(cfg.headers, environ),
        retries=cfg.retries, queue_timeout=cfg.queue_timeout,
        properties={k: dict(v) for k, v in cfg.properties.items()},
        system_toolchains=cfg.system_toolchains,
    )

"""``[execution]``: where command steps run: locally, or on a Remote Execution API (REAPI v2)
cluster (endpoint, instance, TLS, auth headers, extra worker properties per ISA)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ExecutionConfig"]


class ExecutionConfig(BaseModel):
    """``remote = "grpc://host:port"`` (``grpcs://`` for TLS); ``instance`` is the REAPI
    instance name. ``properties`` adds worker properties per ISA (``[execution.properties.
    aarch64] pool = "arm64-native"``). ``headers`` are sent with every call; a value
    ``"env:NAME"`` is read from the environment (``authorization = "env:REAPI_TOKEN"``).
    ``system_toolchains``: steps whose toolchain is the machine's own (not a managed tree
    that can travel) run ``local``ly, or ``remote``ly on a worker advertising the
    ``crossplan-toolchain`` property with their fingerprint. ``queue_timeout``: seconds an
    action may wait for a worker before the run fails naming the ISA it asked for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    executor: Literal["local", "remote"] = "local"
    remote: str | None = None
    instance: str = ""
    server_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, dict[str, str]] = Field(default_factory=dict)
    system_toolchains: Literal["local", "remote"] = "local"
    queue_timeout: float = 600.0
    retries: int = 6

"""The image config document: base config + our layers' diff_ids, history and runtime settings."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from crossplan.backends.oci.spec import ImageSpec
from crossplan.platforms import Platform

__all__ = ["image_config", "rfc3339"]

# Docker-engine bookkeeping about how the *base* was built; meaningless for our image.
_DROP = ("container", "container_config", "docker_version", "id", "parent")


def rfc3339(epoch: int) -> str:
    """``1970-01-01T00:00:00Z`` for 0."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(
    platform: Platform,
    spec: ImageSpec,
    *,
    diff_ids: Sequence[str],
    history: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Build the config: the base's (if any) with ``diff_ids``/``history`` appended."""
    base: dict[str, Any] = copy.deepcopy(dict(spec.base.config)) if spec.base else {}
    doc = {k: v for k, v in base.items() if k not in _DROP}
    doc["architecture"] = platform.arch
    doc["os"] = platform.os
    doc.pop("variant", None)
    if platform.variant:
        doc["variant"] = platform.variant
    doc["created"] = rfc3339(spec.created)
    doc["config"] = _runtime(dict(base.get("config") or {}), spec)
    rootfs = base.get("rootfs") or {}
    doc["rootfs"] = {"type": "layers", "diff_ids": [*rootfs.get("diff_ids", []), *diff_ids]}
    doc["history"] = [*base.get("history", []), *history]
    return doc


def _runtime(cfg: dict[str, Any], spec: ImageSpec) -> dict[str, Any]:
    if spec.env:
        env: dict[str, str] = {}
        for item in cfg.get("Env") or []:
            key, _, value = str(item).partition("=")
            env[key] = value
        env.update(spec.env)
        cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
    if spec.entrypoint is not None:
        cfg["Entrypoint"] = list(spec.entrypoint)
        if spec.cmd is None:
            cfg.pop("Cmd", None)
    if spec.cmd is not None:
        cfg["Cmd"] = list(spec.cmd)
    if spec.workdir is not None:
        cfg["WorkingDir"] = spec.workdir
    if spec.user is not None:
        cfg["User"] = spec.user
    if spec.labels:
        cfg["Labels"] = {**(cfg.get("Labels") or {}), **spec.labels}
    if spec.expose:
        ports = dict(cfg.get("ExposedPorts") or {})
        for port in spec.expose:
            text = str(port)
            ports[text if "/" in text else f"{text}/tcp"] = {}
        cfg["ExposedPorts"] = ports
    return cfg

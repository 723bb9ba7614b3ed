"""What the buildx builder can do: driver, image store, platforms -> strategies and outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crossplan.platforms import Platform

__all__ = ["BuilderInfo", "Capabilities", "parse_inspect", "parse_version"]


@dataclass(frozen=True)
class BuilderInfo:
    """``docker buildx inspect``: the builder's name, driver, status and platforms."""

    name: str
    driver: str
    status: str = ""
    buildkit: str = ""
    platforms: tuple[Platform, ...] = ()


def parse_inspect(text: str) -> BuilderInfo:
    """Parse ``docker buildx inspect`` output (the first node's status and platforms)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in values:
            values[key.strip()] = value.strip()
    platforms: list[Platform] = []
    for item in values.get("Platforms", "").split(","):
        item = item.strip().rstrip("*")
        if not item:
            continue
        try:
            p = Platform.parse(item)
        except Exception:  # platforms we don't target (amd64/v2, mips64le...)
            continue
        if p not in platforms:
            platforms.append(p)
    return BuilderInfo(
        values.get("Name", ""), values.get("Driver", ""), values.get("Status", ""),
        values.get("BuildKit version", values.get("BuildKit", "")), tuple(platforms),
    )


def parse_version(text: str) -> str:
    """``github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3`` -> ``0.13.1+ds1``."""
    m = re.search(r"\bv?(\d+\.\d+\.\d+\S*)", text)
    return m.group(1) if m else text.strip()


@dataclass(frozen=True)
class Capabilities:
    """The builder and engine as detected; the properties say what crossplan may ask of them.

    The ``docker`` driver can build several platforms at once, export OCI tarballs and
    registry/local cache only with the containerd image store; container drivers always can,
    but cannot load multi-platform results, and push by digest where ``docker`` can't.
    """

    buildx_version: str
    builder: BuilderInfo
    containerd_store: bool
    platforms: tuple[Platform, ...] = field(default=())  # what the builder can run

    @property
    def driver(self) -> str:
        return self.builder.driver

    @property
    def docker_driver(self) -> bool:
        return self.driver == "docker"

    @property
    def multi_platform(self) -> bool:
        return not self.docker_driver or self.containerd_store

    @property
    def oci_export(self) -> bool:
        return not self.docker_driver or self.containerd_store

    @property
    def cache_export(self) -> bool:
        """registry/local cache export (inline always works)."""
        return not self.docker_driver or self.containerd_store

    @property
    def load_multi_platform(self) -> bool:
        return self.docker_driver and self.containerd_store

    @property
    def push_by_digest(self) -> bool:
        return not self.docker_driver

    def as_json(self) -> dict[str, object]:
        return {
            "buildx_version": self.buildx_version,
            "builder": self.builder.name,
            "driver": self.driver,
            "status": self.builder.status,
            "buildkit": self.builder.buildkit,
            "containerd_store": self.containerd_store,
            "platforms": [str(p) for p in self.platforms],
            "multi_platform": self.multi_platform,
            "oci_export": self.oci_export,
            "cache_export": self.cache_export,
            "load_multi_platform": self.load_multi_platform,
            "push_by_digest": self.push_by_digest,
        }

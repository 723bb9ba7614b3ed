"""Sysroots as planning facts: the locked Debian packages of one (sysroot, architecture) and
what of them enters a node's key (names, versions, sha256: never the store path)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LockedPackage", "SysrootFact", "locked_packages", "sysroot_component"]


@dataclass(frozen=True)
class LockedPackage:
    """One .deb of a sysroot, as ``sysroots.lock`` records it."""

    name: str
    version: str
    arch: str
    sha256: str
    filename: str = field(default="", compare=False)
    size: int = field(default=0, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch,
                "sha256": self.sha256, "filename": self.filename, "size": self.size}


@dataclass(frozen=True)
class SysrootFact:
    """A sysroot for one target architecture: its name and suite, the exact packages (the
    SBOM lists these), and where the store holds it extracted (``path``: not in keys)."""

    name: str
    debian: str
    arch: str  # Debian architecture: arm64, amd64, armhf
    packages: tuple[LockedPackage, ...]
    path: str = field(default="", compare=False)


def sysroot_component(fact: SysrootFact) -> dict[str, Any]:
    """The key component: ``plan explain`` then names a changed package
    (``sysroot.packages.zlib1g changed: '1:1.2.13 sha256:...' -> ...``)."""
    return {
        "name": fact.name, "debian": fact.debian, "arch": fact.arch,
        "packages": {f"{p.name}:{p.arch}" if p.arch not in (fact.arch, "all") else p.name:
                     f"{p.version} sha256:{p.sha256}" for p in fact.packages},
    }


def locked_packages(sysroots: Mapping[Any, SysrootFact]) -> dict[str, list[dict[str, Any]]]:
    """Node -> the exact Debian packages it linked against (name, version, arch, sha256):
    ``locked_packages(plan.facts.sysroots)``, for SBOMs and ``--json`` reports."""
    return {str(node): [p.as_json() for p in fact.packages] for node, fact in sysroots.items()}

"""Content descriptors, digests and canonical JSON: the values every other module passes around."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

__all__ = [
    "Descriptor",
    "DigestMismatch",
    "canonical_json",
    "platform_from_json",
    "platform_to_json",
    "sha256_digest",
    "verify_digest",
]

JSON = dict[str, Any]


class DigestMismatch(EnvironmentProblem):
    """Content does not hash to the digest it was asked for: corrupt or tampered with."""


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace: the same document always hashes the same."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def verify_digest(data: bytes, digest: str, *, what: str) -> bytes:
    """Return ``data`` if it hashes to ``digest``; raise EnvironmentProblem otherwise."""
    algo, _, expected = digest.partition(":")
    if algo != "sha256" or len(expected) != 64:
        raise EnvironmentProblem(
            f"unsupported digest '{digest}' for {what}", hint="only sha256 digests are supported"
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DigestMismatch(
            f"{what}: content has digest sha256:{actual}, expected {digest}",
            hint="the source is corrupt or was modified; refusing to use it",
        )
    return data


def platform_to_json(platform: Platform) -> JSON:
    """The ``platform`` object of an index entry."""
    out: JSON = {"architecture": platform.arch, "os": platform.os}
    if platform.variant:
        out["variant"] = platform.variant
    return out


def platform_from_json(doc: Mapping[str, Any]) -> Platform:
    """Lenient parse (any os/arch), normalizing ``arm64/v8`` to ``arm64`` and bare ``arm`` to v7."""
    os_ = str(doc.get("os", ""))
    arch = str(doc.get("architecture", ""))
    variant = str(doc.get("variant", "") or "")
    if arch == "arm64" and variant in ("v8", "8"):
        variant = ""
    elif arch == "arm" and not variant:
        variant = "v7"
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return Platform(os_, arch, variant)


@dataclass(frozen=True)
class Descriptor:
    """What a manifest or index says about a piece of content: type, digest, size."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, media_type: str, data: bytes, **kw: Any) -> Descriptor:
        """Describe ``data``."""
        return cls(media_type, sha256_digest(data), len(data), **kw)

    def to_json(self) -> JSON:
        out: JSON = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            out["platform"] = platform_to_json(self.platform)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.urls:
            out["urls"] = list(self.urls)
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Descriptor:
        plat = doc.get("platform")
        return cls(
            media_type=str(doc.get("mediaType", "")),
            digest=str(doc["digest"]),
            size=int(doc["size"]),
            platform=platform_from_json(plat) if isinstance(plat, Mapping) else None,
            annotations=dict(doc.get("annotations") or {}),
            urls=tuple(doc.get("urls") or ()),
        )

"""``[attest]`` and ``[sign]``: which supply-chain documents a published image carries, and
the cosign key that signs them (separate from ``[cache] signing_key``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["AttestConfig", "SignConfig"]


class AttestConfig(BaseModel):
    """``[attest] sbom = "spdx" | "cyclonedx" | "none"``, ``provenance = true | false``:
    attached as OCI referrers of each platform manifest of every pushed image and OCI layout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sbom: Literal["spdx", "cyclonedx", "none"] = "spdx"
    provenance: bool = True


class SignConfig(BaseModel):
    """``[sign] key = "cosign.key"``: a key in cosign's own encrypted format (its password
    from ``COSIGN_PASSWORD``); the index, each platform manifest and the attestations are
    signed so that ``cosign verify --key cosign.pub`` accepts them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str | None = None

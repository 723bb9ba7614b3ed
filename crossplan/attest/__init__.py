"""Supply-chain documents of published images, from the build's own facts: per-platform
SBOMs (SPDX 2.3, CycloneDX), SLSA v1 provenance, cosign-compatible signatures, attached
as OCI referrers of each platform manifest (``attach``); settings in ``options_for``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from crossplan.attest.attach import AttestOptions, Documents, attest_image, documents
from crossplan.recipes.models import Recipe

__all__ = ["AttestOptions", "Documents", "attest_image", "documents", "options_for"]


def options_for(recipe: Recipe, sign_key: str | Path | None, environ: Mapping[str, str]
                ) -> AttestOptions:
    """``[attest]`` and ``[sign]`` (``sign_key``, from ``--sign-key``, wins over ``[sign]
    key``; its password comes from COSIGN_PASSWORD)."""
    from crossplan.attest.cosign import load_cosign_key

    key = None
    path = Path(sign_key) if sign_key else (
        recipe.root / recipe.sign.key if recipe.sign.key else None)
    if path is not None:
        what = "--sign-key" if sign_key else f"{recipe.label}: [sign] key"
        key = load_cosign_key(path, environ.get("COSIGN_PASSWORD"), what=what)
    return AttestOptions(recipe.attest.sbom, recipe.attest.provenance, key)

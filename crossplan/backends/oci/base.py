"""Resolve a recipe's ``base`` string (scratch, oci:, oci-archive:, registry ref) per platform."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from crossplan.backends.oci.layout import parse_layout_ref, read_layout_base
from crossplan.backends.oci.spec import BaseImage
from crossplan.platforms import Platform

if TYPE_CHECKING:
    import httpx

__all__ = ["resolve_base"]


def resolve_base(
    base: str | None,
    platforms: Iterable[Platform],
    *,
    insecure: bool = False,
    transport: httpx.BaseTransport | None = None,
    docs: Path | None = None,
    layers: Path | None = None,
) -> dict[Platform, BaseImage | None]:
    """``None``/``"scratch"`` -> no base; ``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]`` -> a
    layout; anything else (optionally ``docker://``) -> a registry reference (its manifests
    and configs kept by digest under ``docs``, its layers under ``layers`` when given:
    pull.py)."""
    wanted = list(platforms)
    if base is None or base.strip() in ("", "scratch"):
        return dict.fromkeys(wanted)
    layout = parse_layout_ref(base)
    if layout is None:  # the registry client (httpx) loads only for a registry base
        from crossplan.backends.oci.pull import pull_base
    found = (
        read_layout_base(layout, wanted)
        if layout is not None
        else pull_base(base, wanted, insecure=insecure, transport=transport, docs=docs,
                       layers=layers)
    )
    return {p: found[p] for p in wanted}

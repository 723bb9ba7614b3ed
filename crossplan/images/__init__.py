"""Image backends (``oci``: daemonless; ``buildx``: generated Dockerfiles) behind one
protocol, chosen per image step by the planner's pure rule (``planner.container``)."""

from __future__ import annotations

from crossplan.cache.store import Store
from crossplan.images.protocol import LAYOUT_DIR, ImageBackend
from crossplan.planner.container import choose_backend
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["LAYOUT_DIR", "ImageBackend", "backends_for", "pin_base"]


def backends_for(recipe: Recipe, store: Store, source_date_epoch: int) -> dict[str, ImageBackend]:
    """One instance of each backend for a run (buildx probes its engine only when used)."""
    from crossplan.images.buildx import BuildxBackend
    from crossplan.images.oci import OciBackend

    return {
        "oci": OciBackend(recipe, store, source_date_epoch),
        "buildx": BuildxBackend(recipe, store, source_date_epoch),
    }


def pin_base(recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
    """The key identity of an image step's outside world, asked of its backend."""
    if choose_backend(recipe, step) == "buildx":
        from crossplan.images.buildx_pin import buildx_pin

        return buildx_pin(recipe, sid, step, platforms)
    from crossplan.images.oci import oci_pin

    return oci_pin(recipe, sid, step, platforms)

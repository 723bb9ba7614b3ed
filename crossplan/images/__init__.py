"""Image backends (``oci``: daemonless; ``buildx``: generated Dockerfiles) behind one
protocol, chosen per image step by the planner's pure rule (``planner.container``)."""

from __future__ import annotations

from crossplan.cache.store import Store
from crossplan.images.protocol import LAYOUT_DIR, ImageBackend
from crossplan.planner.container import choose_backend
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["LAYOUT_DIR", "ImageBackend", "backends_for", "pin_base"]


class _Backends(dict[str, ImageBackend]):
    """The backends of a run, each made (and its module imported: buildx loads the Docker
    SDK, oci the registry client) on first ``backends[name]``."""

    def __init__(self, recipe: Recipe, store: Store, source_date_epoch: int,
                 offline: bool) -> None:
        super().__init__()
        self._args = (recipe, store, source_date_epoch)
        self._offline = offline

    def __missing__(self, name: str) -> ImageBackend:
        backend: ImageBackend
        if name == "oci":
            from crossplan.images.oci import OciBackend

            backend = OciBackend(*self._args, offline=self._offline)
        elif name == "buildx":
            from crossplan.images.buildx import BuildxBackend

            backend = BuildxBackend(*self._args, offline=self._offline)
        else:
            raise KeyError(name)
        self[name] = backend
        return backend


def backends_for(recipe: Recipe, store: Store, source_date_epoch: int, *,
                 offline: bool = False) -> dict[str, ImageBackend]:
    """One instance of each backend for a run, made when first asked for (buildx probes its
    engine only when used); ``offline``: nothing that needs a registry (exit 3)."""
    return _Backends(recipe, store, source_date_epoch, offline)


def pin_base(recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
    """The key identity of an image step's outside world, asked of its backend."""
    if choose_backend(recipe, step) == "buildx":
        from crossplan.images.buildx_pin import buildx_pin

        return buildx_pin(recipe, sid, step, platforms)
    from crossplan.images.oci import oci_pin

    return oci_pin(recipe, sid, step, platforms)

"""Image backends (``oci``: daemonless; ``buildx``: generated Dockerfiles) behind one
protocol, chosen per image step by the planner's pure rule (``planner.container``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from crossplan.cache.store import Entry, Store
from crossplan.errors import CrossplanError
from crossplan.images.protocol import LAYOUT_DIR, ImageBackend
from crossplan.planner.container import choose_backend
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import PlannedNode
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["LAYOUT_DIR", "ImageBackend", "backends_for", "close_backends", "pin_base",
           "prepare_images"]


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


def prepare_images(
    backends: Mapping[str, ImageBackend],
) -> Callable[[PlannedNode, Mapping[NodeId, Entry]], None]:
    """The scheduler's ``prepare`` hook: an image node some of whose dependencies were just
    built is handed to its backend's ``prepare``."""

    def prepare(pn: PlannedNode, deps: Mapping[NodeId, Entry]) -> None:
        action = pn.action
        if action is None or action.kind != "image":
            return
        try:
            backends[action.backend or "oci"].prepare(pn, deps)
        except CrossplanError:
            return  # early work only: the image node's build reports any problem

    return prepare


def close_backends(backends: Mapping[str, ImageBackend]) -> None:
    """Each backend the run made drops the early work no build used."""
    for backend in list(backends.values()):
        backend.close()


def pin_base(recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...], *,
             docs: Path | None = None) -> str:
    """The key identity of an image step's outside world, asked of its backend (``docs``:
    where registry documents are kept by digest, images/oci.py)."""
    if choose_backend(recipe, step) == "buildx":
        from crossplan.images.buildx_pin import buildx_pin

        return buildx_pin(recipe, sid, step, platforms)
    from crossplan.images.oci import oci_pin

    return oci_pin(recipe, sid, step, platforms, docs=docs)

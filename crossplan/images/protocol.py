"""The image backend protocol: pin (what of the world enters the key), prepare (early work
while some dependencies still run), build (an OCI layout into the work dir), publish
(``--output`` and ``--push``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from crossplan.cache.store import Entry
from crossplan.executors.result import ImageResult
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import PlannedNode
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep

__all__ = ["LAYOUT_DIR", "ImageBackend", "dep_entry"]

LAYOUT_DIR = "oci"  # an image node's store entry holds its OCI layout here


class ImageBackend(Protocol):
    name: str

    def pin(self, sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
        """The identity of the outside world the image depends on (base digests, generator);
        EnvironmentProblem when that world is unreachable."""
        ...

    def build(
        self, pn: PlannedNode, workdir: Path, deps: Mapping[NodeId, Entry]
    ) -> tuple[str, ...]:
        """Build the image node into ``workdir`` (its layout under ``oci/``, from the deps'
        entries); returns the paths to collect into the store."""
        ...

    def prepare(self, pn: PlannedNode, deps: Mapping[NodeId, Entry]) -> None:
        """Some of the image node's dependencies are built (``deps``), others still run:
        start whatever work they allow (oci: compressing layers). Returns at once, never
        raises; ``build`` must give the same bytes whether or not this was called."""
        ...

    def close(self) -> None:
        """The run is over: drop work ``prepare`` started that no build used."""
        ...

    def publish(
        self, node: NodeId, entry: Entry, entries: Mapping[NodeId, Entry], *,
        output: str | None, push: bool, count: int,
    ) -> ImageResult:
        """Write the stored image to ``output`` (oci:DIR | oci-archive:FILE) and/or push it
        to the step's tags; ``count`` image steps are published by this run."""
        ...


def dep_entry(deps: Mapping[NodeId, Entry], step: str, platform: Platform) -> Entry | None:
    """The entry of ``step`` an image copies for ``platform``: its node for that platform,
    or its one platform-independent node; None while it has none (yet)."""
    return deps.get(NodeId(step, str(platform))) or deps.get(NodeId(step, ANY))

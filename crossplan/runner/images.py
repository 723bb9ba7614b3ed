"""Image steps: assemble per-platform OCI images from deps' outputs; write and push them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from crossplan.backends.toolchains.base import BuildAction
from crossplan.cache.store import Entry, Store
from crossplan.errors import StepFailed
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import PlannedNode
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep, Recipe
from crossplan.runner.result import RunResult

__all__ = ["ImagePipeline", "base_pin"]


def base_pin(recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
    return step.base


class ImagePipeline:
    def __init__(self, recipe: Recipe, store: Store) -> None:
        self.recipe = recipe
        self.store = store

    def assemble(self, pn: PlannedNode, workdir: Path, deps: Mapping[str, Entry]) -> BuildAction:
        raise StepFailed("image steps are not implemented yet", step=pn.id.step)

    def publish(
        self, result: RunResult, entries: Mapping[NodeId, Entry], *, output: str | None,
        push: bool,
    ) -> RunResult:
        return result

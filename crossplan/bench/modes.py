"""What every bench mode shares: the job, the context, and the two-call protocol.

A mode ``prepare``s a job once, untimed (toolchain images, warm caches, build contexts; it
raises EnvironmentProblem when the job cannot run here, which becomes a Skip), then
``measure``s it once per round, from cold caches, returning a Sample.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from crossplan.bench.report import Prep, Sample
from crossplan.platforms import Platform
from crossplan.recipes.models import Recipe, Step

__all__ = ["BenchContext", "Job", "Mode", "ToolchainCache", "sub_recipe"]

ToolchainCache = Literal["cold", "warm"]


@dataclass(frozen=True)
class Job:
    """One (step, platform) to build. Native jobs carry the build platform."""

    step: str
    platform: Platform

    @property
    def key(self) -> tuple[str, str]:
        return self.step, str(self.platform)


@dataclass(frozen=True)
class BenchContext:
    """What the modes work from. ``store_dir`` is the persistent store (managed toolchains,
    wheels), never a timed one; ``workdir`` holds fresh stores and build contexts."""

    recipe: Recipe
    store_dir: Path
    workdir: Path
    build: Platform
    targets: tuple[Platform, ...] = ()  # the bench's target platforms
    toolchain_cache: ToolchainCache = "cold"
    base: str = ""  # base of the toolchain images the emulated mode makes ("": none given)
    images: Mapping[str, str] = field(default_factory=dict)  # step -> toolchain image
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], float] = time.perf_counter
    log: Callable[[str], None] = lambda message: None
    log_dir: Path | None = None  # kept build logs (default: <workdir>/logs, deleted after)

    @property
    def logs(self) -> Path:
        return self.log_dir or self.workdir / "logs"

    def step(self, sid: str) -> Step:
        return self.recipe.steps[sid]


class Mode(Protocol):
    """A way to build a job: cross (crossplan), native (crossplan, build platform), emulated."""

    name: str

    def prepare(self, job: Job) -> list[Prep]:
        """Untimed set-up; raises EnvironmentProblem/RecipeError when ``job`` can't run."""
        ...

    def measure(self, job: Job, round_: int) -> Sample:
        """One timed build of ``job`` from cold caches."""
        ...


def sub_recipe(recipe: Recipe, sid: str) -> Recipe:
    """``recipe`` reduced to ``sid`` and its (transitive) deps: planning then hashes and
    fingerprints only what the build needs (no image steps, no Docker pings)."""
    keep: list[str] = []
    todo = [sid]
    while todo:
        s = todo.pop()
        if s in keep:
            continue
        keep.append(s)
        todo += list(recipe.steps[s].deps)
    steps = {k: v for k, v in recipe.steps.items() if k in keep}
    return recipe.model_copy(update={"steps": steps})

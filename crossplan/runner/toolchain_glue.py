"""Connect recipes to toolchains: which toolchain builds a step, and its key fingerprint."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from crossplan.backends.toolchains.base import Toolchain
from crossplan.planner.plan import Fingerprinter
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep, Recipe, ShellStep, Step
from crossplan.runner.actions import ToolchainResolver

__all__ = ["make_fingerprinter", "resolver_for"]


def resolver_for(recipe: Recipe, store_dir: Path, environ: Mapping[str, str]) -> ToolchainResolver:
    cache: dict[str, Toolchain] = {}

    def resolve(sid: str, step: Step) -> Toolchain:
        if sid not in cache:
            from crossplan.backends.toolchains.discover import toolchain_for

            cache[sid] = toolchain_for(step, recipe.toolchains, store_dir, environ)
        return cache[sid]

    return resolve


def make_fingerprinter(
    recipe: Recipe, store_dir: Path, environ: Mapping[str, str]
) -> Fingerprinter:
    resolve = resolver_for(recipe, store_dir, environ)

    def fingerprint(
        sid: str, step: Step, platform: Platform | None, platforms: tuple[Platform, ...]
    ) -> str | None:
        if isinstance(step, ShellStep):
            return None
        if isinstance(step, ImageStep):
            from crossplan.runner.images import base_pin

            return base_pin(recipe, sid, step, platforms)
        if platform is None:
            return None
        return resolve(sid, step).fingerprint(platform)

    return fingerprint

"""Toolchains on this machine: ``toolchains`` lists them, ``install_toolchains`` fetches pins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossplan.cache.store import default_store_dir
from crossplan.recipes.models import Recipe

__all__ = ["install_toolchains", "toolchains"]


def toolchains(*, cache_dir: str | Path | None = None) -> list[Any]:
    """Toolchains found on this machine (and managed ones in the store): ``plan toolchains``."""
    from crossplan.backends.toolchains.discover import discover

    store_dir = Path(cache_dir) if cache_dir else default_store_dir()
    return list(discover(store_dir=store_dir))


def install_toolchains(recipe: Recipe, *, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Install the recipe's pinned toolchains now: ``plan toolchains install``."""
    from crossplan.backends.toolchains.managed import install

    store_dir = Path(cache_dir) if cache_dir else default_store_dir()
    return install(recipe.toolchains, store_dir)



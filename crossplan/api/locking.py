"""``lock``: resolve a recipe's bases and toolchain images per platform into ``plan.lock``."""

from __future__ import annotations

from crossplan.probe.lock import LockResult
from crossplan.recipes.models import Recipe

__all__ = ["LockResult", "lock"]


def lock(recipe: Recipe, *, update: bool = False) -> LockResult:
    """Write ``plan.lock`` beside ``recipe``: images not locked yet are resolved (every
    image with ``update``); the result lists per image and platform what changed and warns
    when a step needs a platform its base lacks. Runs then use the locked digests."""
    from crossplan.probe.lock import lock as _lock

    return _lock(recipe, update=update)

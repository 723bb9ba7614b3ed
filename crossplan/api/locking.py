"""``lock``: resolve a recipe's bases and toolchain images per platform into ``plan.lock``
and the Debian sysroots its steps build against into ``sysroots.lock``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from crossplan.probe.lock import LockResult
from crossplan.recipes.models import Recipe

__all__ = ["LockResult", "lock"]


def lock(
    recipe: Recipe, *, update: bool = False, cache_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LockResult:
    """Write ``plan.lock`` beside ``recipe``: images not locked yet are resolved (every
    image with ``update``); the result lists per image and platform what changed and warns
    when a step needs a platform its base lacks. Sysroots the plan uses are locked in
    ``sysroots.lock`` (re-resolved with ``update``). Runs then use the locked digests and
    packages; ``plan run --locked`` refuses anything not locked."""
    from crossplan.probe.lock import lock as _lock

    result = _lock(recipe, update=update)
    if not recipe.sysroots:
        return result
    from crossplan.api.planning import _say
    from crossplan.cache.store import default_store_dir
    from crossplan.probe.sysroot_lock import lock_sysroots

    env = os.environ if environ is None else environ
    store_dir = Path(cache_dir) if cache_dir else default_store_dir(env)
    lines = lock_sysroots(recipe, store_dir, env, update=update, say=_say)
    return dataclasses.replace(result, sysroots=tuple(lines))

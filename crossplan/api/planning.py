"""load -> probe -> plan: a recipe in, a pure Plan out (only the probe touches the world)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from crossplan.cache.leases import DOCS
from crossplan.cache.store import Store, default_store_dir
from crossplan.planner.facts import Facts
from crossplan.planner.plan import Plan, make_plan
from crossplan.platforms import Platform
from crossplan.probe import gather
from crossplan.probe.digest import StatMemo
from crossplan.recipes import from_dict
from crossplan.recipes import load as _load
from crossplan.recipes.models import ImageStep, Recipe

_T = TypeVar("_T")

__all__ = ["facts", "load", "plan", "recipe_from_dict", "store_for"]


def load(path: str | Path = "plan.toml") -> Recipe:
    """Load and validate a plan.toml (or the plan.toml in a directory)."""
    return _load(path)


def recipe_from_dict(data: Mapping[str, Any], *, root: str | Path = ".") -> Recipe:
    """Build a Recipe from Python objects, as if read from ``root/plan.toml``."""
    return from_dict(dict(data), file=Path(root).resolve() / "plan.toml")


def store_for(cache_dir: str | Path | None = None) -> Store:
    """The local store at ``cache_dir`` (default: $CROSSPLAN_CACHE_DIR, else
    $XDG_CACHE_HOME/crossplan). Close it when done."""
    return Store(Path(cache_dir) if cache_dir else default_store_dir())


def facts(
    recipe: Recipe,
    platforms: list[str] | tuple[str, ...] | str | None = None,
    *,
    cache_dir: str | Path | None = None,
    with_toolchains: bool = True,
    environ: Mapping[str, str] | None = None,
    memo: bool = True,
    locked: bool = False,
) -> Facts:
    """Ask the world what planning ``recipe`` needs: input trees, and (``with_toolchains``)
    toolchain identities and commands and pinned bases (registries, the Docker engine).
    ``locked``: sysroots come only from sysroots.lock (nothing resolved or written)."""
    from crossplan.images import pin_base
    from crossplan.probe.sandbox import resolve_sandbox
    from crossplan.probe.sysroots import provider_for
    from crossplan.probe.toolchains import resolver_for

    env = os.environ if environ is None else environ
    store_dir = Path(cache_dir) if cache_dir else default_store_dir(environ)
    resolve = resolver_for(recipe, store_dir, env) if with_toolchains else None

    def pin(sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
        return pin_base(recipe, sid, step, platforms, docs=store_dir / DOCS)

    # bubblewrap's probe (a process, ~5 ms) runs while the input trees are read
    sandbox = _in_background(resolve_sandbox, recipe, env) if with_toolchains else None
    return gather(
        recipe, platforms, environ=env, memo=StatMemo(store_dir / "statmemo") if memo else None,
        toolchains=resolve, bases=pin if with_toolchains else None,
        sandbox=sandbox.result if sandbox is not None else ("off", None),
        sysroots=provider_for(recipe, store_dir, env, _say, frozen=locked)
        if recipe.sysroots else None,
    )


def _in_background(fn: Callable[..., _T], *args: object) -> Future[_T]:
    """``fn(*args)`` on a thread of its own; its result (or exception) from ``.result()``."""
    future: Future[_T] = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # re-raised by .result() in the planning thread
            future.set_exception(exc)

    threading.Thread(target=run, name="probe", daemon=True).start()
    return future


def _say(message: str) -> None:
    """Sysroot progress (apt update, downloads) on stderr: it is long work."""
    import sys

    print(f"sysroots: {message}", file=sys.stderr, flush=True)


def plan(
    recipe: Recipe,
    platforms: list[str] | tuple[str, ...] | str | None = None,
    *,
    cache_dir: str | Path | None = None,
    with_toolchains: bool = True,
    environ: Mapping[str, str] | None = None,
    locked: bool = False,
) -> Plan:
    """Expand ``recipe`` for ``platforms`` (default: the project's) into a Plan with keys
    and Actions: ``facts`` then the pure ``planner.make_plan``.

    ``with_toolchains=False`` skips toolchain and base probing (keys then lack their
    identities and compile commands are unknown: for printing graphs only).

    ``locked`` (``plan run --locked``, CI): the lock files are read, never written; an
    image plan.lock does not pin, or a sysroot sysroots.lock does not, is an error (exit 2)."""
    pinned = recipe
    if with_toolchains and (recipe.root / "plan.lock").is_file():  # bases pinned per platform
        from crossplan.probe.lock import apply_lock

        pinned = apply_lock(recipe, platforms)
    elif with_toolchains and locked:
        from crossplan.probe.lock import require_lock

        require_lock(recipe)
    found = facts(pinned, platforms, cache_dir=cache_dir, with_toolchains=with_toolchains,
                  environ=environ, locked=locked)
    planned = make_plan(pinned, platforms, found)
    from crossplan.recipes.loader import remember

    remember(recipe)  # the memo of its validation is kept only for recipes that plan
    return planned

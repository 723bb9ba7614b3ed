"""``explain`` and ``affected``: why a node would rebuild, and what a change affects."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from crossplan.api.planning import store_for
from crossplan.cache.remote import RemoteCache
from crossplan.cache.store import default_store_dir
from crossplan.errors import RecipeError
from crossplan.executors.substitution import RemoteRun, remote_lookup, remote_settings
from crossplan.inspect.affected import (
    Affected,
    affected_since_plan,
    affected_since_store,
    checkout,
)
from crossplan.inspect.explain import Explanation, explain_node
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import Plan, make_plan
from crossplan.platforms import Platform
from crossplan.recipes import load as _load
from crossplan.recipes.models import Recipe

__all__ = ["affected", "explain"]


def affected(
    p: Plan, since: str | None = None, *, cache_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Affected:
    """The nodes of ``p`` whose input keys differ from the same recipe at git revision
    ``since`` (planned for the same platforms, in a temporary extract of that revision), or,
    without ``since``, from the last recorded successful run of each node in the store; with
    what changed for each. Keys, not paths, decide: a change to a shared library's sources
    marks exactly the nodes that (transitively) consume it."""
    if since is None:
        store = store_for(cache_dir)
        try:
            return affected_since_store(p, store)
        finally:
            store.close()
    store_dir = Path(cache_dir) if cache_dir else default_store_dir(environ)
    label = f"git {since}"
    with checkout(p.recipe.root, since) as (old_root, commit):
        old_file = old_root / p.recipe.file.name if old_root is not None else None
        if old_file is None or not old_file.is_file():
            return affected_since_plan(p, None, f"{label} (no plan there)", since=since,
                                       commit=commit)
        try:
            # Plan it the way ``p`` was planned: with toolchain fingerprints or without.
            fingerprinted = any(n.components.get("toolchain") for n in p.nodes.values())
            old = _plan_at(_load(old_file), [str(x) for x in p.platforms], store_dir,
                           with_toolchains=fingerprinted, environ=environ)
        except RecipeError as exc:
            raise RecipeError(
                f"cannot plan the recipe as of {since}: {exc.message}", file=exc.file,
                step=exc.step, hint=exc.hint,
            ) from None
        return affected_since_plan(p, old, f"{label} ({commit[:12]})", since=since,
                                   commit=commit)


def explain(
    p: Plan, step: str, platform: str | None = None, *, cache_dir: str | Path | None = None,
    cache_remote: str | None = None, cache_mode: str | None = None,
    environ: Mapping[str, str] | None = None, on_warning: Callable[[str], None] | None = None,
) -> Explanation:
    """Why would (step, platform) rebuild? Components of its key and what changed; with a
    remote cache configured, whether the remote holds the key."""
    nodes = [n for n in p.nodes if n.step == step]
    if not nodes:
        raise RecipeError(
            f"unknown step '{step}'", file=p.recipe.label,
            hint="known steps: " + ", ".join(sorted(p.recipe.steps)),
        )
    if platform:
        want = str(Platform.parse(platform))
        nodes = [n for n in nodes if n.platform in (want, ANY)]
        if not nodes:
            raise RecipeError(f"step '{step}' is not built for {want}", file=p.recipe.label)
    node: NodeId = nodes[0]
    store = store_for(cache_dir)
    try:
        ex = explain_node(p, store, node)
        settings = remote_settings(
            p.recipe, remote=cache_remote, mode=cache_mode,
            environ=os.environ if environ is None else environ,
        )
        if settings is not None:
            ex = _explain_remote(ex, RemoteRun(p, RemoteCache(settings, store)), on_warning)
        return ex
    finally:
        store.close()


def _explain_remote(
    ex: Explanation, run: RemoteRun, on_warning: Callable[[str], None] | None
) -> Explanation:
    try:
        key, found = remote_lookup(run, ex.node)
    finally:
        run.close()
    for w in run.warnings:
        if on_warning is not None:
            on_warning(w)
    if ex.key is None and key is not None:
        note = "its deps' outputs are known from the remote cache's entries"
        return dataclasses.replace(ex, key=key, remote=found, changes=[*ex.changes, note])
    return dataclasses.replace(ex, remote=found)


def _plan_at(
    recipe: Recipe, platforms: list[str], store_dir: Path, *, with_toolchains: bool,
    environ: Mapping[str, str] | None,
) -> Plan:
    """Plan another revision's recipe (no stat memo: its files live in a temporary tree)."""
    from crossplan.api.planning import facts

    found = facts(recipe, platforms, cache_dir=store_dir, with_toolchains=with_toolchains,
                  environ=environ, memo=False)
    return make_plan(recipe, platforms, found)

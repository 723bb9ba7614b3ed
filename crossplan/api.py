"""The public Python API: load -> plan -> run, plus explain. The CLI only parses and renders."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplan.cache.remote import RemoteCache, RemoteSettings
from crossplan.cache.signing import default_key_name, write_keypair
from crossplan.cache.store import Store, default_store_dir
from crossplan.errors import RecipeError
from crossplan.planner.digest import StatMemo
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import Plan, make_plan
from crossplan.platforms import Platform
from crossplan.recipes import from_dict
from crossplan.recipes import load as _load
from crossplan.recipes.models import Recipe, Step
from crossplan.runner.actions import make_action_factory
from crossplan.runner.events import OnEvent
from crossplan.runner.explain import Explanation, explain_node
from crossplan.runner.export import export_entries
from crossplan.runner.result import RunResult
from crossplan.runner.scheduler import execute_plan
from crossplan.runner.substitution import (
    RemoteRun,
    pull_plan,
    push_plan,
    remote_lookup,
    remote_settings,
)

__all__ = [
    "RunOptions",
    "cache_keygen",
    "cache_pull",
    "cache_push",
    "explain",
    "load",
    "plan",
    "recipe_from_dict",
    "run",
    "store_for",
]


def load(path: str | Path = "plan.toml") -> Recipe:
    """Load and validate a plan.toml (or the plan.toml in a directory)."""
    return _load(path)


def recipe_from_dict(data: Mapping[str, Any], *, root: str | Path = ".") -> Recipe:
    """Build a Recipe from Python objects, as if read from ``root/plan.toml``."""
    return from_dict(dict(data), file=Path(root).resolve() / "plan.toml")


def store_for(cache_dir: str | Path | None = None) -> Store:
    return Store(Path(cache_dir) if cache_dir else default_store_dir())


def plan(
    recipe: Recipe,
    platforms: list[str] | tuple[str, ...] | str | None = None,
    *,
    cache_dir: str | Path | None = None,
    with_toolchains: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Plan:
    """Expand ``recipe`` for ``platforms`` (default: the project's) into a Plan with keys.

    ``with_toolchains=False`` skips toolchain discovery (keys then lack fingerprints: for
    printing graphs only)."""
    from crossplan.runner.buildx_plan import adapt_fingerprinter, adapt_plan

    store_dir = Path(cache_dir) if cache_dir else default_store_dir(environ)
    memo = StatMemo(store_dir / "statmemo")
    fp = _fingerprinter(recipe, store_dir, environ) if with_toolchains else None
    if fp is None:
        return adapt_plan(make_plan(recipe, platforms, memo=memo, environ=environ))
    fp = adapt_fingerprinter(recipe, fp)  # compile = "container": no host toolchain needed
    return adapt_plan(make_plan(recipe, platforms, memo=memo, environ=environ, fingerprint=fp))


def _fingerprinter(recipe: Recipe, store_dir: Path, environ: Mapping[str, str] | None) -> Any:
    from crossplan.runner.toolchain_glue import make_fingerprinter

    return make_fingerprinter(recipe, store_dir, os.environ if environ is None else environ)


@dataclass
class RunOptions:
    """Everything ``plan run`` can be told, for the API."""

    cache_dir: str | Path | None = None
    jobs: int | None = None
    keep_going: bool = False
    export: str | Path | None = None
    output: str | None = None  # oci:DIR | oci-archive:FILE
    push: bool = False
    smoke: bool = False
    targets: list[str] = field(default_factory=list)  # step ids ("" = all)
    environ: Mapping[str, str] | None = None
    cache_remote: str | None = None
    cache_mode: str | None = None


def run(p: Plan, options: RunOptions | None = None, *, on_event: OnEvent | None = None) -> RunResult:
    """Build every node of ``p`` (or ``options.targets`` and their deps)."""
    opts = options or RunOptions()
    from crossplan.runner.images import ImagePipeline
    from crossplan.runner.toolchain_glue import resolver_for

    store = store_for(opts.cache_dir)
    remote: RemoteRun | None = None
    try:
        if opts.targets:
            p = p.subplan(p.select(opts.targets))
        environ = os.environ if opts.environ is None else opts.environ
        images = ImagePipeline(p.recipe, store, p.source_date_epoch)
        actions = make_action_factory(
            resolver_for(p.recipe, store.root, environ), images.assemble, store.root / "toolcache"
        )
        settings = remote_settings(
            p.recipe, remote=opts.cache_remote, mode=opts.cache_mode, environ=environ
        )
        if settings is not None:  # batched look-ups now, downloads in the background
            remote = RemoteRun.start(p, store, settings, on_event)
        result, entries = execute_plan(
            p, store, actions=actions, jobs=opts.jobs, keep_going=opts.keep_going,
            environ=environ, on_event=on_event, verify=_verify,
            substitute=remote.substitute if remote else None,
            after_build=remote.after_build if remote else None,
        )
        if opts.export:
            export_entries(store, entries, Path(opts.export))
        if result.ok:
            result = images.publish(result, entries, output=opts.output, push=opts.push)
        return remote.finish(result) if remote else result
    finally:
        if remote is not None:
            remote.close()
        store.close()


def _verify(pn: Any, workdir: Path, action: Any) -> None:
    if pn.platform is None or not action.executables:
        return
    from crossplan.backends.elf import check_elf

    for rel in action.executables:
        check_elf(workdir / rel, pn.platform)


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


def _remote_for(
    p: Plan, cache_remote: str | None, cache_mode: str | None,
    environ: Mapping[str, str] | None, *, write: bool,
) -> RemoteSettings:
    settings = remote_settings(
        p.recipe, remote=cache_remote, mode=cache_mode,
        environ=os.environ if environ is None else environ,
    )
    if settings is None:
        raise RecipeError(
            "no remote cache is configured (or its mode is off)", file=p.recipe.label,
            hint='set [cache] remote = "HOST/REPO", --cache-remote or CROSSPLAN_CACHE_REMOTE',
        )
    if write and settings.mode != "readwrite":
        raise RecipeError(
            f"the remote cache's mode is '{settings.mode}': pushing needs readwrite",
            file=p.recipe.label, hint="pass --cache-mode readwrite",
        )
    return settings


def cache_push(
    p: Plan, *, cache_dir: str | Path | None = None, cache_remote: str | None = None,
    cache_mode: str | None = None, environ: Mapping[str, str] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> dict[NodeId, str]:
    """Warm the remote cache: push the local entry of every node of ``p`` that has one."""
    settings = _remote_for(p, cache_remote, cache_mode, environ, write=True)
    store = store_for(cache_dir)
    try:
        with RemoteCache(settings, store) as rc:
            statuses = push_plan(p, rc)
        for w in rc.warnings:
            if on_warning is not None:
                on_warning(w)
        return dict(statuses)
    finally:
        store.close()


def cache_pull(
    p: Plan, *, cache_dir: str | Path | None = None, cache_remote: str | None = None,
    cache_mode: str | None = None, environ: Mapping[str, str] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> dict[NodeId, str]:
    """Substitute every key of ``p`` the remote can resolve into the local store."""
    settings = _remote_for(p, cache_remote, cache_mode, environ, write=False)
    store = store_for(cache_dir)
    try:
        run = RemoteRun(p, RemoteCache(settings, store))
        statuses = pull_plan(run)
        for w in run.warnings:
            if on_warning is not None:
                on_warning(w)
        return dict(statuses)
    finally:
        store.close()


def cache_keygen(out: str | Path, name: str | None = None) -> tuple[Path, Path]:
    """Write an ed25519 key pair for signing remote cache entries: (secret, public)."""
    return write_keypair(Path(out), name or default_key_name())

"""The public Python API: load -> plan -> run, plus explain and affected. The CLI only
parses arguments and renders what these return."""

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
from crossplan.recipes.models import Recipe
from crossplan.runner.actions import make_action_factory
from crossplan.runner.affected import (
    Affected,
    affected_since_plan,
    affected_since_store,
    checkout,
)
from crossplan.runner.events import OnEvent, StepEvent
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
    "RunResult",
    "StepEvent",
    "affected",
    "cache_keygen",
    "cache_pull",
    "cache_push",
    "explain",
    "install_toolchains",
    "load",
    "plan",
    "recipe_from_dict",
    "run",
    "store_for",
    "toolchains",
]


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
    store_dir = Path(cache_dir) if cache_dir else default_store_dir(environ)
    return _plan(recipe, platforms, store_dir, StatMemo(store_dir / "statmemo"),
                 with_toolchains=with_toolchains, environ=environ)


def _plan(
    recipe: Recipe, platforms: list[str] | tuple[str, ...] | str | None, store_dir: Path,
    memo: StatMemo | None, *, with_toolchains: bool, environ: Mapping[str, str] | None,
) -> Plan:
    from crossplan.runner.buildx_plan import adapt_fingerprinter, adapt_plan

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
    targets: list[str] = field(default_factory=list)  # step ids or globs (empty: all)
    environ: Mapping[str, str] | None = None
    cache_remote: str | None = None
    cache_mode: str | None = None
    affected: bool = False  # only the nodes `affected(plan, since)` reports, and their deps
    since: str | None = None  # git revision for `affected` (None: the last recorded run)


def run(
    p: Plan, options: RunOptions | None = None, *, on_event: OnEvent | None = None,
    jobs: int | None = None,
) -> RunResult:
    """Build every node of ``p`` (or ``options.targets`` and their deps; with
    ``options.affected``, only the affected ones among them). ``on_event`` receives a
    typed StepEvent per started/finished/cached/substituted/failed/skipped node, from
    worker threads; ``jobs`` overrides ``options.jobs``."""
    opts = options or RunOptions()
    if jobs is not None:
        opts = dataclasses.replace(opts, jobs=jobs)
    from crossplan.runner.images import ImagePipeline
    from crossplan.runner.toolchain_glue import resolver_for

    if opts.targets:
        p = p.subplan(p.select(opts.targets))
    if opts.affected:
        found = affected(p, opts.since, cache_dir=opts.cache_dir, environ=opts.environ)
        p = p.subplan(found.targets)
    store = store_for(opts.cache_dir)
    remote: RemoteRun | None = None
    try:
        environ = os.environ if opts.environ is None else opts.environ
        images = ImagePipeline(p.recipe, store, p.source_date_epoch)
        actions = make_action_factory(
            resolver_for(p.recipe, store.root, environ), images.assemble,
            toolcache_dir(store, environ),
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
        if opts.smoke:
            from crossplan.runner.smoke_run import smoke_test

            result = smoke_test(p, store, result, entries)
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
            old = _plan(_load(old_file), [str(x) for x in p.platforms], store_dir, None,
                        with_toolchains=fingerprinted, environ=environ)
        except RecipeError as exc:
            raise RecipeError(
                f"cannot plan the recipe as of {since}: {exc.message}", file=exc.file,
                step=exc.step, hint=exc.hint,
            ) from None
        return affected_since_plan(p, old, f"{label} ({commit[:12]})", since=since,
                                   commit=commit)


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


def toolcache_dir(store: Store, environ: Mapping[str, str]) -> Path:
    """Toolchains' own caches (GOCACHE, zig, cargo target): speed only, never in keys.
    ``CROSSPLAN_TOOLCACHE_DIR`` shares them between stores."""
    shared = environ.get("CROSSPLAN_TOOLCACHE_DIR")
    return Path(shared) if shared else store.root / "toolcache"


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

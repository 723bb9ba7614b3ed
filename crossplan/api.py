"""The public Python API: load -> plan -> run, plus explain. The CLI only parses and renders."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

__all__ = ["RunOptions", "explain", "load", "plan", "recipe_from_dict", "run", "store_for"]


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
    store_dir = Path(cache_dir) if cache_dir else default_store_dir(environ)
    memo = StatMemo(store_dir / "statmemo")
    fp = _fingerprinter(recipe, store_dir, environ) if with_toolchains else None
    if fp is None:
        return make_plan(recipe, platforms, memo=memo, environ=environ)
    return make_plan(recipe, platforms, memo=memo, environ=environ, fingerprint=fp)


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
    try:
        if opts.targets:
            p = p.subplan(p.select(opts.targets))
        environ = os.environ if opts.environ is None else opts.environ
        images = ImagePipeline(p.recipe, store, p.source_date_epoch)
        actions = make_action_factory(
            resolver_for(p.recipe, store.root, environ), images.assemble, store.root / "toolcache"
        )
        result, entries = execute_plan(
            p, store, actions=actions, jobs=opts.jobs, keep_going=opts.keep_going,
            environ=environ, on_event=on_event, verify=_verify,
        )
        if opts.export:
            export_entries(store, entries, Path(opts.export))
        if result.ok:
            result = images.publish(result, entries, output=opts.output, push=opts.push)
        return result
    finally:
        store.close()


def _verify(pn: Any, workdir: Path, action: Any) -> None:
    if pn.platform is None or not action.executables:
        return
    from crossplan.backends.elf import check_elf

    for rel in action.executables:
        check_elf(workdir / rel, pn.platform)


def explain(
    p: Plan, step: str, platform: str | None = None, *, cache_dir: str | Path | None = None
) -> Explanation:
    """Why would (step, platform) rebuild? Components of its key and what changed."""
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
        return explain_node(p, store, node)
    finally:
        store.close()



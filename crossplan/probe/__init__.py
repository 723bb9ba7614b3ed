"""The probe: the one planning step that touches the world. It asks the file system (input
trees), the toolchains (identities, commands) and the image backends (pinned bases) and
returns one frozen Facts value for the pure planner."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from crossplan.errors import CrossplanError, EnvironmentProblem, RecipeError
from crossplan.planner.actions import ENV_ALLOWLIST, PASS_THROUGH
from crossplan.planner.container import choose_backend
from crossplan.planner.facts import Facts, Probed, ToolCommand
from crossplan.planner.graph import NodeId, expand
from crossplan.planner.plan import expand_for, target_platforms
from crossplan.planner.sysroot import SysrootFact
from crossplan.platforms import Platform, build_platform
from crossplan.probe.digest import StatMemo
from crossplan.probe.sysroot_nodes import probe_sysroots
from crossplan.probe.toolchains import Resolver, probe_toolchains, warm_toolchains
from crossplan.probe.trees import input_trees
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["BasePinner", "gather", "source_date_epoch"]

# (image step id, step, its platforms) -> the pinned base (and generator) entering its key.
BasePinner = Callable[[str, ImageStep, tuple[Platform, ...]], str]


def source_date_epoch(recipe: Recipe, environ: Mapping[str, str]) -> int:
    raw = environ.get("SOURCE_DATE_EPOCH")
    if raw:
        try:
            return int(raw)
        except ValueError:
            raise RecipeError(f"SOURCE_DATE_EPOCH={raw!r} is not an integer") from None
    return recipe.project.source_date_epoch or 0


def gather(
    recipe: Recipe,
    platforms: list[str] | tuple[str, ...] | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    memo: StatMemo | None = None,
    toolchains: Resolver | None = None,
    bases: BasePinner | None = None,
    sandbox: tuple[str, str | None] | Callable[[], tuple[str, str | None]] = ("off", None),
    sysroots: Callable[[str, Platform], SysrootFact] | None = None,
) -> Facts:
    """Facts for planning ``recipe`` for ``platforms``. Without ``toolchains`` (a resolver)
    compile nodes have no identity and no commands; without ``bases`` image nodes have no
    base pin: such a plan is for printing only. ``sandbox`` is how local steps will run
    (``probe.sandbox.resolve_sandbox``) and a warning for the user, or a function answering
    it (asked once the input trees are read: a probe started earlier runs meanwhile). The
    stat memo is saved here."""
    env = os.environ if environ is None else environ
    targets = target_platforms(recipe, platforms)
    graph = expand_for(recipe, targets)
    steps = sorted({n.step for n in expand(recipe, targets)})
    if toolchains is not None:
        warm_toolchains(recipe, steps, toolchains)  # their probes run while the trees are read
    trees = input_trees(recipe, steps, memo)
    if memo is not None:
        memo.save()
    probed: set[Probed] = {"inputs"}
    identities: dict[NodeId, str | None] = {}
    commands: dict[NodeId, ToolCommand] = {}
    deferred: dict[NodeId, CrossplanError] = {}
    tool_notes: tuple[str, ...] = ()
    nodes = {n: graph.nodes[n]["platform"] for n in graph}
    roots: dict[NodeId, SysrootFact] = {}
    if toolchains is not None:
        probed.add("toolchains")
        roots, failed = probe_sysroots(recipe, nodes, sysroots)
        identities, commands, deferred, tool_notes = probe_toolchains(
            recipe, {n: p for n, p in nodes.items() if n not in failed}, trees, toolchains,
            roots)
        for n, exc in failed.items():
            identities[n], deferred[n] = None, exc
    if bases is not None:
        probed.add("bases")
        for n in nodes:
            step = recipe.steps[n.step]
            if isinstance(step, ImageStep):
                identities[n] = _pin(recipe, n.step, step, graph.nodes[n]["platforms"], bases)
    backends = {sid: choose_backend(recipe, s) for sid, s in recipe.steps.items()
                if isinstance(s, ImageStep)}
    if callable(sandbox):
        sandbox = sandbox()
    return Facts(
        build_platform=build_platform(),
        source_date_epoch=source_date_epoch(recipe, env),
        env={k: env[k] for k in ENV_ALLOWLIST if k in env},
        host_env={k: env[k] for k in PASS_THROUGH if k in env},
        trees=trees, identities=identities, commands=commands, backends=backends,
        probed=frozenset(probed), deferred=deferred, sandbox=sandbox[0], sysroots=roots,
        notes=((sandbox[1],) if sandbox[1] else ()) + tool_notes,
    )


def _pin(
    recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...], pin: BasePinner
) -> str:
    try:
        return pin(sid, step, platforms)
    except EnvironmentProblem as exc:
        if exc.file is None and exc.step is None:  # say which recipe and step needed it
            raise EnvironmentProblem(exc.message, file=recipe.label, step=sid,
                                     hint=exc.hint) from None
        raise


def store_memo(store_dir: Path) -> StatMemo:
    """The stat memo kept in the store (digests of unchanged files are not recomputed)."""
    return StatMemo(store_dir / "statmemo")

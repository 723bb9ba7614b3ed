"""The Plan: a frozen, inspectable value of nodes, edges and static key components."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from crossplan.errors import RecipeError
from crossplan.planner.digest import StatMemo, TreeDigest, tree_digest
from crossplan.planner.graph import ANY, NodeId, expand
from crossplan.planner.keys import KEY_SCHEMA, final_key, step_fields
from crossplan.platforms import Platform, build_platform, parse_platforms
from crossplan.recipes.models import Recipe, Step

__all__ = ["ENV_ALLOWLIST", "Fingerprinter", "Plan", "PlannedNode", "make_plan"]

# Host variables passed into steps; when set they enter the key.
ENV_ALLOWLIST = (
    "GOPROXY", "GOPRIVATE", "GONOSUMDB", "GONOPROXY", "GOSUMDB", "GOINSECURE",
    "RUSTFLAGS", "CARGO_NET_OFFLINE",
)

# (step id, step, target platform or None) -> toolchain / base identity for the key.
Fingerprinter = Callable[[str, Step, Platform | None, tuple[Platform, ...]], str | None]


def _no_fingerprint(sid: str, step: Step, p: Platform | None, ps: tuple[Platform, ...]) -> None:
    return None


@dataclass(frozen=True)
class PlannedNode:
    """One (step, platform) with everything its key is made of except deps' outputs."""

    id: NodeId
    step: Step
    platform: Platform | None
    platforms: tuple[Platform, ...]
    deps: tuple[NodeId, ...]
    components: Mapping[str, Any]
    inputs: TreeDigest | None = field(compare=False, repr=False)

    def key(self, dep_outputs: Mapping[NodeId, Mapping[str, str]]) -> str:
        """The action key, given each dependency's output digests."""
        return final_key(
            self.components, {str(d): dict(dep_outputs[d]) for d in sorted(self.deps)}
        )


@dataclass(frozen=True)
class Plan:
    """What would run. Planning is pure: nothing here has touched the world but reads."""

    recipe: Recipe
    platforms: tuple[Platform, ...]
    build_platform: Platform
    source_date_epoch: int
    nodes: Mapping[NodeId, PlannedNode]  # in a topological order
    graph: nx.DiGraph[NodeId] = field(compare=False, repr=False)

    @property
    def order(self) -> list[NodeId]:
        return list(self.nodes)

    def edges(self) -> list[tuple[NodeId, NodeId]]:
        return sorted(self.graph.edges())

    def subplan(self, targets: list[NodeId]) -> Plan:
        """Only ``targets`` and what they need."""
        keep: set[NodeId] = set()
        for t in targets:
            keep.add(t)
            keep |= nx.ancestors(self.graph, t)
        nodes = {n: v for n, v in self.nodes.items() if n in keep}
        return Plan(
            self.recipe, self.platforms, self.build_platform, self.source_date_epoch,
            nodes, self.graph.subgraph(keep).copy(),
        )

    def select(self, steps: list[str], platforms: list[str] | None = None) -> list[NodeId]:
        out = [
            n for n in self.nodes
            if n.step in steps and (platforms is None or n.platform in (*platforms, ANY))
        ]
        unknown = set(steps) - {n.step for n in self.nodes}
        if unknown:
            raise RecipeError(
                f"unknown step '{sorted(unknown)[0]}'", file=self.recipe.label,
                hint="known steps: " + ", ".join(sorted(self.recipe.steps)),
            )
        return out


def source_date_epoch(recipe: Recipe, environ: Mapping[str, str]) -> int:
    raw = environ.get("SOURCE_DATE_EPOCH")
    if raw:
        try:
            return int(raw)
        except ValueError:
            raise RecipeError(f"SOURCE_DATE_EPOCH={raw!r} is not an integer") from None
    return recipe.project.source_date_epoch or 0


def make_plan(
    recipe: Recipe,
    platforms: list[str] | tuple[str, ...] | str | None = None,
    *,
    fingerprint: Fingerprinter = _no_fingerprint,
    memo: StatMemo | None = None,
    environ: Mapping[str, str] | None = None,
) -> Plan:
    """Expand, validate and hash a recipe's static inputs into a Plan."""
    env = os.environ if environ is None else environ
    if platforms:
        try:
            targets = parse_platforms(platforms)
        except RecipeError as exc:
            raise RecipeError(exc.message, hint=exc.hint) from None
    else:
        targets = parse_platforms(list(recipe.project.platforms))
    graph = expand(recipe, targets)
    sde = source_date_epoch(recipe, env)
    allowed = {k: env[k] for k in ENV_ALLOWLIST if k in env}
    trees: dict[str, TreeDigest | None] = {}
    by_src: dict[tuple[str | None, tuple[str, ...]], TreeDigest | None] = {}
    nodes: dict[NodeId, PlannedNode] = {}
    for node in nx.lexicographical_topological_sort(graph):
        step = recipe.steps[node.step]
        plat: Platform | None = graph.nodes[node]["platform"]
        plats: tuple[Platform, ...] = graph.nodes[node]["platforms"]
        if node.step not in trees:
            # Steps sharing an input tree (often src = ".") walk and hash it once.
            shared = (step.src, step.exclude)
            if shared not in by_src:
                by_src[shared] = _inputs(recipe, node.step, step, memo)
            trees[node.step] = by_src[shared]
        tree = trees[node.step]
        components: dict[str, Any] = {
            "schema": KEY_SCHEMA,
            "kind": step.kind,
            "step": step_fields(step),
            "inputs": tree.digest if tree else None,
            "platform": str(plat) if plat else (
                [str(p) for p in plats] if node.platform == ANY and step.kind == "image" else ANY
            ),
            "env": allowed,
            "toolchain": fingerprint(node.step, step, plat, plats),
            "source_date_epoch": sde,
        }
        nodes[node] = PlannedNode(
            node, step, plat, plats, tuple(sorted(graph.predecessors(node))), components, tree
        )
    if memo is not None:
        memo.save()
    return Plan(recipe, targets, build_platform(), sde, nodes, graph)


def _inputs(recipe: Recipe, sid: str, step: Step, memo: StatMemo | None) -> TreeDigest | None:
    if step.src is None:
        return None
    root = (recipe.root / step.src).resolve()
    project = recipe.root.resolve()
    if root != project and project not in root.parents:
        raise RecipeError(
            f"src '{step.src}' escapes the project", file=recipe.label, step=sid,
            hint="keep inputs inside the directory holding plan.toml",
        )
    if not root.exists():
        raise RecipeError(
            f"src '{step.src}' does not exist ({root})", file=recipe.label, step=sid,
            hint="create it or fix the path (relative to plan.toml)",
        )
    return tree_digest(root, exclude=step.exclude, memo=memo)



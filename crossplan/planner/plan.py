"""The Plan: a frozen, inspectable value of nodes, edges and static key components."""

from __future__ import annotations

import difflib
import fnmatch
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from crossplan.errors import RecipeError
from crossplan.planner.digest import StatMemo, TreeDigest, tree_digest
from crossplan.planner.graph import ANY, NodeId, expand
from crossplan.planner.keys import KEY_SCHEMA, final_key, input_key, step_fields
from crossplan.platforms import Platform, build_platform, parse_platforms
from crossplan.recipes.models import Recipe, Step
from crossplan.recipes.workspace import dep_dir

__all__ = ["ENV_ALLOWLIST", "Fingerprinter", "Plan", "PlannedNode", "make_plan"]

# Host variables passed into steps; when set they enter the key.
ENV_ALLOWLIST = (
    "GOPROXY", "GOPRIVATE", "GONOSUMDB", "GONOPROXY", "GOSUMDB", "GOINSECURE",
    "RUSTFLAGS", "CARGO_NET_OFFLINE",
)

_GLOB = frozenset("*?[")

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
    """What would run: a frozen value of nodes (in a topological order), edges and key
    components; ``node()``, ``why()``, ``input_keys()``, ``select()`` and ``subplan()``
    inspect it. Planning is pure: nothing here has touched the world but reads."""

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
        """The nodes of ``steps`` (ids, or globs such as ``services/*:image``)."""
        have = {n.step for n in self.nodes}
        wanted: set[str] = set()
        for pattern in steps:
            matched = (
                set(fnmatch.filter(sorted(have), pattern)) if _GLOB & set(pattern)
                else have & {pattern}
            )
            if not matched:
                raise self._unknown(pattern)
            wanted |= matched
        return [
            n for n in self.nodes
            if n.step in wanted and (platforms is None or n.platform in (*platforms, ANY))
        ]

    def _unknown(self, step: str) -> RecipeError:
        member = self.recipe.member_of(step)
        if member is not None:
            local = step[len(member.path) + 1:]
            names = ", ".join(s[len(member.path) + 1:] for s in member.steps)
            return RecipeError(
                f"unknown step '{local}' in workspace member '{member.path}'",
                file=str(member.file), step=step, hint=f"its steps: {names}",
            )
        if step in self.recipe.steps:
            return RecipeError(
                f"step '{step}' has no node for the target platforms", file=self.recipe.label,
                step=step, hint="check its `platforms` against --platform",
            )
        known = sorted(self.recipe.steps)
        close = difflib.get_close_matches(step, known, n=1)
        return RecipeError(
            f"unknown step '{step}'", file=self.recipe.label,
            hint=f"did you mean '{close[0]}'?" if close else "known steps: " + ", ".join(known),
        )

    def node(self, step: str, platform: str | None = None) -> PlannedNode:
        """The planned node of ``step`` for ``platform`` (the only one, when omitted)."""
        nodes = [n for n in self.nodes if n.step == step]
        if not nodes:
            raise self._unknown(step)
        if platform is not None:
            want = str(Platform.parse(platform))
            nodes = [n for n in nodes if n.platform in (want, ANY)]
        if len(nodes) != 1:
            plats = ", ".join(n.platform for n in self.nodes if n.step == step)
            raise RecipeError(
                f"step '{step}' has {len(nodes)} nodes for that platform",
                file=self.recipe.label_of(step), step=step, hint=f"pick one of: {plats}",
            )
        return self.nodes[nodes[0]]

    def input_keys(self) -> dict[NodeId, str]:
        """Input-addressed keys: each node's static components plus its deps' input keys.

        Unlike action keys (which hash deps' *built outputs*), these are known before
        anything runs; equal input keys mean nothing a node reads has changed."""
        keys: dict[NodeId, str] = {}
        for node, pn in self.nodes.items():
            keys[node] = input_key(pn.components, {str(d): keys[d] for d in pn.deps})
        return keys

    def why(self, node: NodeId | str) -> dict[str, Any]:
        """What ``node``'s key is made of: its static components and its deps."""
        nid = node if isinstance(node, NodeId) else self._parse_node(node)
        pn = self.nodes[nid]
        return {**dict(pn.components), "deps": [str(d) for d in pn.deps]}

    def _parse_node(self, text: str) -> NodeId:
        for n in self.nodes:
            if str(n) == text:
                return n
        raise self._unknown(text.split("@", 1)[0])


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
        dep_steps = sorted({d.step for d in graph.pred[node]})
        dirs = {d: dep_dir(recipe, node.step, d) for d in dep_steps}
        if step.kind != "image" and any(d != where for d, where in dirs.items()):
            components["dep_dirs"] = dirs  # workspace members see their own deps by name
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
    member = recipe.member_of(sid)
    project = (recipe.root / member.path if member else recipe.root).resolve()
    if root != project and project not in root.parents:
        raise RecipeError(
            f"src '{step.src}' escapes the {'member' if member else 'project'}",
            file=recipe.label_of(sid), step=sid,
            hint="keep inputs inside the directory holding plan.toml",
        )
    if not root.exists():
        raise RecipeError(
            f"src '{step.src}' does not exist ({root})", file=recipe.label_of(sid), step=sid,
            hint="create it or fix the path (relative to plan.toml)",
        )
    return tree_digest(root, exclude=step.exclude, memo=memo)



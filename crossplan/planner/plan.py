"""The Plan: a pure function of (recipe, platforms, facts) into a frozen value of nodes, their
Actions and static key components, and edges."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from crossplan.errors import RecipeError
from crossplan.planner.actions import ENV_ALLOWLIST, Action, DepInput, lower
from crossplan.planner.container import container_compiled, pruned_steps
from crossplan.planner.facts import Facts
from crossplan.planner.graph import ANY, NodeId, expand
from crossplan.planner.keys import KEY_SCHEMA, input_key, step_fields
from crossplan.planner.sysroot import sysroot_component
from crossplan.planner.tree import TreeDigest
from crossplan.platforms import Platform, parse_platforms
from crossplan.recipes.models import Recipe, Step
from crossplan.recipes.workspace import dep_dir
from crossplan.redact import keyed_env

__all__ = ["ENV_ALLOWLIST", "Plan", "PlannedNode", "expand_for", "make_plan", "target_platforms"]

_GLOB = frozenset("*?[")


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
    action: Action | None = field(default=None, compare=False, repr=False)
    # compile = "container" image nodes: the input trees of the steps compiled inside buildx
    sources: Mapping[str, TreeDigest | None] = field(default_factory=dict, compare=False,
                                                     repr=False)

    def key(self, dep_outputs: Mapping[NodeId, Mapping[str, str]]) -> str:
        """The action key, given each dependency's output digests."""
        assert self.action is not None
        return self.action.key({d: dep_outputs[d] for d in self.deps})


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
    facts: Facts | None = field(default=None, compare=False, repr=False)

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
            nodes, self.graph.subgraph(keep).copy(), self.facts,
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


def target_platforms(
    recipe: Recipe, platforms: list[str] | tuple[str, ...] | str | None
) -> tuple[Platform, ...]:
    """The platforms asked for (``--platform``), else the project's."""
    if platforms:
        try:
            return parse_platforms(platforms)
        except RecipeError as exc:
            raise RecipeError(exc.message, hint=exc.hint) from None
    return parse_platforms(list(recipe.project.platforms))


def expand_for(recipe: Recipe, targets: tuple[Platform, ...]) -> nx.DiGraph[NodeId]:
    """The (step, platform) graph as it will be planned: with ``compile = "container"``,
    compile nodes that only feed buildx images are gone and those images depend on what
    their compile stages read instead."""
    graph = expand(recipe, targets)
    compiled = container_compiled(recipe)
    if not compiled:
        return graph
    pruned = pruned_steps(recipe, compiled)
    for nid in [n for n in graph if n.step in compiled]:
        plats: tuple[Platform, ...] = graph.nodes[nid]["platforms"]
        for d in [d for d in graph.predecessors(nid) if d.step in compiled[nid.step]]:
            graph.remove_edge(d, nid)
        for s in compiled[nid.step]:
            for dep in recipe.steps[s].deps:  # host steps a compile stage reads (deps/<dep>/)
                for p in plats:
                    cand = [NodeId(dep, str(p)), NodeId(dep, ANY)]
                    found = next((c for c in cand if c in graph), None)
                    if found is not None:
                        graph.add_edge(found, nid)
    graph.remove_nodes_from([n for n in list(graph) if n.step in pruned])
    return graph


def make_plan(
    recipe: Recipe, platforms: list[str] | tuple[str, ...] | str | None, facts: Facts
) -> Plan:
    """Expand and validate a recipe for ``platforms`` (default: the project's), lower every
    node to its Action and compute static key components. Pure: same inputs, same Plan."""
    targets = target_platforms(recipe, platforms)
    graph = expand_for(recipe, targets)
    compiled = container_compiled(recipe)
    sde = facts.source_date_epoch
    nodes: dict[NodeId, PlannedNode] = {}
    for node in nx.lexicographical_topological_sort(graph):
        step = recipe.steps[node.step]
        plat: Platform | None = graph.nodes[node]["platform"]
        plats: tuple[Platform, ...] = graph.nodes[node]["platforms"]
        tree = facts.trees.get(node.step)
        components: dict[str, Any] = {
            "schema": KEY_SCHEMA,
            "kind": step.kind,
            "step": step_fields(step),
            "inputs": tree.digest if tree else None,
            "platform": str(plat) if plat else (
                [str(p) for p in plats] if node.platform == ANY and step.kind == "image" else ANY
            ),
            "env": keyed_env(facts.env),  # credentials in URLs: redacted + blake3
            "toolchain": facts.identities.get(node),
            "source_date_epoch": sde,
        }
        if node in facts.sysroots:  # the locked packages, never the store path
            components["sysroot"] = sysroot_component(facts.sysroots[node])
        if step.kind != "image":
            components["sandbox"] = facts.sandbox  # how it ran: bwrap, or off (unconfined)
        preds = tuple(sorted(graph.predecessors(node)))
        dep_steps = sorted({d.step for d in preds})
        dirs = {d: dep_dir(recipe, node.step, d) for d in dep_steps}
        if step.kind != "image" and any(d != where for d, where in dirs.items()):
            components["dep_dirs"] = dirs  # workspace members see their own deps by name
        sources: dict[str, TreeDigest | None] = {}
        if node.step in compiled:
            components["container_compile"] = _inside(recipe, compiled[node.step], facts)
            sources = {s: facts.trees.get(s) for s in compiled[node.step]}
        deps = tuple(DepInput(d, f"deps/{dirs[d.step]}") for d in preds)
        action = lower(node, step, plat, facts, components, deps)
        nodes[node] = PlannedNode(
            node, step, plat, plats, preds, components, tree, action, sources
        )
    return Plan(recipe, targets, facts.build_platform, sde, nodes, graph, facts)


def _inside(recipe: Recipe, steps: tuple[str, ...], facts: Facts) -> dict[str, Any]:
    inside: dict[str, Any] = {}
    for s in steps:
        step = recipe.steps[s]
        tree = facts.trees.get(s)
        inside[s] = {"kind": step.kind, "step": step_fields(step), "emulate": step.emulate,
                     "toolchain_image": step.toolchain_image,
                     "inputs": tree.digest if tree else None}
    return inside

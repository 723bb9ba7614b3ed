"""Which nodes a change affects: input-addressed keys of two snapshots compared node by node,
with what changed for each (the same data ``plan explain`` shows). Pure: no store, no git.

An action key needs the deps' *built outputs*; an input key (static components plus the
deps' input keys) is known before anything runs, so it can be compared between a plan and
the same plan at another git revision, or the components recorded by the last run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplan.planner.graph import NodeId
from crossplan.planner.keys import input_key
from crossplan.planner.plan import Plan, PlannedNode

__all__ = [
    "AffectedNode",
    "NodeState",
    "Normalizer",
    "compare",
    "diff_components",
    "diff_files",
    "snapshot",
    "snapshot_keys",
    "static_keys",
]

# A node's components as compared (e.g. without a volatile git revision label).
Normalizer = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]


def _as_is(kind: str, components: Mapping[str, Any]) -> Mapping[str, Any]:
    return components


@dataclass(frozen=True)
class NodeState:
    """What a node's input key is made of: static components, input files, deps' node ids."""

    components: Mapping[str, Any]
    inputs: Mapping[str, str] = field(default_factory=dict)
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class AffectedNode:
    """A node whose input key differs from the baseline's, and what changed."""

    node: NodeId
    changes: tuple[str, ...]
    new: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "node": str(self.node), "step": self.node.step, "platform": self.node.platform,
            "new": self.new, "changes": list(self.changes),
        }


def snapshot(plan: Plan, normalize: Normalizer = _as_is) -> dict[str, NodeState]:
    """Every node of ``plan`` as a NodeState, by ``str(node)``."""
    return {
        str(n): NodeState(
            normalize(pn.step.kind, pn.components),
            pn.inputs.as_map() if pn.inputs else {},
            tuple(str(d) for d in pn.deps),
        )
        for n, pn in plan.nodes.items()
    }


def snapshot_keys(snap: Mapping[str, NodeState]) -> dict[str, str | None]:
    """Input keys of a snapshot; None for a node with a dep missing from the snapshot."""
    keys: dict[str, str | None] = {}

    def key(name: str, seen: frozenset[str]) -> str | None:
        if name in keys:
            return keys[name]
        state = snap.get(name)
        if state is None or name in seen:
            return None
        deps = {d: key(d, seen | {name}) for d in state.deps}
        got = {d: k for d, k in deps.items() if k is not None}
        keys[name] = input_key(state.components, got) if len(got) == len(deps) else None
        return keys[name]

    for name in snap:
        key(name, frozenset())
    return keys


def static_keys(plan: Plan, normalize: Normalizer = _as_is) -> dict[NodeId, str]:
    """Input-addressed keys of every node: hash(components + deps' input keys)."""
    keys: dict[NodeId, str] = {}
    for node, pn in plan.nodes.items():  # topological order
        deps = {str(d): keys[d] for d in pn.deps}
        keys[node] = input_key(normalize(pn.step.kind, pn.components), deps)
    return keys


def compare(
    plan: Plan, baseline: Mapping[str, NodeState], normalize: Normalizer = _as_is
) -> tuple[list[AffectedNode], list[str]]:
    """(affected nodes of ``plan`` in plan order, ids of baseline nodes no longer planned)."""
    now = snapshot(plan, normalize)
    now_keys = snapshot_keys(now)
    before_keys = snapshot_keys(baseline)
    out: list[AffectedNode] = []
    hit: set[str] = set()
    root = plan.recipe.root.resolve()
    for node, pn in plan.nodes.items():
        name = str(node)
        before = baseline.get(name)
        if before is None:
            out.append(AffectedNode(node, ("new: not in the baseline",), new=True))
            hit.add(name)
            continue
        if before_keys.get(name) is not None and before_keys[name] == now_keys[name]:
            continue
        changes = _why(now[name], before, hit, _src_prefix(pn, root))
        out.append(AffectedNode(node, tuple(changes)))
        hit.add(name)
    removed = sorted(set(baseline) - set(now))
    return out, removed


def _why(now: NodeState, before: NodeState, hit: set[str], where: str) -> list[str]:
    changes = diff_components(dict(before.components), dict(now.components))
    if before.components.get("inputs") != now.components.get("inputs"):
        changes += diff_files(
            "input", {where + k: v for k, v in before.inputs.items()},
            {where + k: v for k, v in now.inputs.items()},
        )
    for d in sorted(set(now.deps) - set(before.deps)):
        changes.append(f"dep added: {d}")
    for d in sorted(set(before.deps) - set(now.deps)):
        changes.append(f"dep removed: {d}")
    changes += [f"dep {d} is affected" for d in now.deps if d in hit]
    if not changes:
        missing = [d for d in before.deps if d not in hit]
        changes.append(
            "the baseline lacks a dep's record: " + ", ".join(missing) if missing
            else "the input key changed, but no recorded component differs"
        )
    return changes


def _src_prefix(pn: PlannedNode, recipe_root: Path) -> str:
    """Input paths are relative to the step's ``src``; report them relative to the recipe."""
    if pn.inputs is None:
        return ""
    root = pn.inputs.root.parent if pn.inputs.root.is_file() else pn.inputs.root
    try:
        rel = root.relative_to(recipe_root).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel + "/"


def diff_components(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """``step.command changed: [...] -> [...]`` lines; input files are reported separately."""
    out: list[str] = []
    for k in sorted(set(before) | set(after)):
        name = f"{prefix}{k}"
        a, b = before.get(k), after.get(k)
        if a == b or name == "inputs":
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_components(a, b, name + ".")
        else:
            out.append(f"{name} changed: {_short_pair(a, b)}")
    return out


def diff_files(what: str, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """``input changed: src/a.c`` lines: added, removed and changed paths."""
    out = []
    for p in sorted(set(before) | set(after)):
        if p not in before:
            out.append(f"{what} added: {p}")
        elif p not in after:
            out.append(f"{what} removed: {p}")
        elif before[p] != after[p]:
            out.append(f"{what} changed: {p}")
    return out


def _short_pair(a: Any, b: Any) -> str:
    """``before -> after``; long values are cut around their first difference so the
    change stays visible (two long commands differing at their end must not look equal)."""
    ra, rb = repr(a), repr(b)
    if len(ra) <= 80 and len(rb) <= 80:
        return f"{ra} -> {rb}"
    i = next((k for k, (x, y) in enumerate(zip(ra, rb, strict=False)) if x != y),
             min(len(ra), len(rb)))
    start = max(0, i - 30)

    def cut(r: str) -> str:
        s = r[start:start + 77]
        return ("..." if start else "") + s + ("..." if start + 77 < len(r) else "")

    return f"{cut(ra)} -> {cut(rb)}"

"""``plan explain``: what a node's key is made of, and what changed since its last recorded run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crossplan.cache.store import Store
from crossplan.executors.resolve import resolve_keys
from crossplan.planner.affected import diff_components
from crossplan.planner.affected import diff_files as _diff_files
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan

__all__ = ["Explanation", "diff_components", "explain_node"]


@dataclass(frozen=True)
class Explanation:
    """Why a node would (not) rebuild: its key, its components, and the changes since the
    last recorded run of it in this store."""

    node: NodeId
    key: str | None  # None when a dependency has not been built yet
    cached: bool
    components: dict[str, Any]
    inputs: dict[str, str]
    deps: dict[str, dict[str, str] | None]
    last_key: str | None
    changes: list[str] = field(default_factory=list)
    remote: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "node": str(self.node),
            "step": self.node.step,
            "platform": self.node.platform,
            "key": self.key,
            "cached": self.cached,
            "components": self.components,
            "inputs": {"files": len(self.inputs), "digest": self.components.get("inputs")},
            "deps": self.deps,
            "last_key": self.last_key,
            "changes": self.changes,
            "remote": self.remote,
        }


def explain_node(plan: Plan, store: Store, node: NodeId) -> Explanation:
    keys = resolve_keys(plan, store)
    pn = plan.nodes[node]
    key = keys[node]
    deps: dict[str, dict[str, str] | None] = {}
    for d in pn.deps:
        dk = keys[d]
        entry = store.get(dk, verify=False) if dk else None
        deps[str(d)] = entry.digests() if entry else None
    cached = key is not None and store.get(key, verify=False) is not None
    inputs = pn.inputs.as_map() if pn.inputs else {}
    last = store.last_record(str(node))
    changes: list[str] = []
    if last is None:
        changes.append("no recorded run of this step: it has never been built with this store")
    elif last.get("key") == key:
        changes.append("nothing changed since the last recorded run")
    else:
        changes += diff_components(last.get("components", {}), dict(pn.components))
        changes += _diff_files("input", last.get("inputs", {}), inputs)
        for dname, outs in deps.items():
            before = last.get("deps", {}).get(dname)
            if outs is None:
                changes.append(f"dep {dname}: not built yet (its outputs decide this key)")
            elif before is not None and before != outs:
                changes += _diff_files(f"dep {dname} output", before, outs)
        if not changes:
            changes.append("the key changed, but no recorded component differs")
    return Explanation(
        node, key, cached, dict(pn.components), inputs, deps,
        last.get("key") if last else None, changes,
    )

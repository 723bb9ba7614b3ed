"""Keys known before running: a node's key is computable once every dep has a stored entry."""

from __future__ import annotations

from crossplan.cache.store import CorruptEntry, Store
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan

__all__ = ["resolve_keys"]


def resolve_keys(plan: Plan, store: Store) -> dict[NodeId, str | None]:
    """Keys computable now: a node's key is known when every dep has a stored entry."""
    keys: dict[NodeId, str | None] = {}
    outputs: dict[NodeId, dict[str, str] | None] = {}
    for node, pn in plan.nodes.items():
        dep_out = {d: outputs.get(d) for d in pn.deps}
        if any(v is None for v in dep_out.values()):
            keys[node] = None
            outputs[node] = None
            continue
        key = pn.key({d: v for d, v in dep_out.items() if v is not None})
        keys[node] = key
        try:
            entry = store.get(key, verify=False)
        except CorruptEntry:
            entry = None
        outputs[node] = entry.digests() if entry else None
    return keys

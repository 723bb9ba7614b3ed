"""Copy results out of the store: ``--export DIR`` -> DIR/<step>/<os>_<arch>[_<variant>]/."""

from __future__ import annotations

from pathlib import Path

from crossplan.cache.store import Entry, Store
from crossplan.planner.graph import ANY, NodeId

__all__ = ["export_dir_for", "export_entries"]


def export_dir_for(root: Path, node: NodeId) -> Path:
    slug = "any" if node.platform == ANY else node.platform.replace("/", "_")
    return root / node.step / slug


def export_entries(store: Store, entries: dict[NodeId, Entry], root: Path) -> list[Path]:
    out = []
    for node, entry in sorted(entries.items()):
        dest = export_dir_for(root, node)
        dest.mkdir(parents=True, exist_ok=True)
        store.materialize(entry, dest)
        out.append(dest)
    return out

"""Render plans and results for people: graphs (text, dot, mermaid, json) and tables."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossplan.planner.plan import Plan

__all__ = ["graph_json", "render_graph"]


def graph_json(p: Plan) -> dict[str, Any]:
    """Every node with its input key (known before anything runs: its static components and
    its deps' input keys) and its Action; what the probe asked (``probed``)."""
    keys = p.input_keys()
    return {
        "platforms": [str(x) for x in p.platforms],
        "probed": sorted(p.facts.probed) if p.facts else [],
        "nodes": [
            {"id": str(n), "step": n.step, "platform": n.platform, "kind": pn.step.kind,
             "input_key": keys[n],
             "action": pn.action.as_json() if pn.action is not None else None}
            for n, pn in p.nodes.items()
        ],
        "edges": [[str(a), str(b)] for a, b in p.edges()],
    }


def render_graph(p: Plan, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(graph_json(p), indent=2)
    if fmt == "dot":
        lines = ["digraph plan {", "  rankdir=LR;"]
        for n, pn in p.nodes.items():
            lines.append(f'  "{n}" [label="{n.step}\\n{n.platform}\\n({pn.step.kind})"];')
        for a, b in p.edges():
            lines.append(f'  "{a}" -> "{b}";')
        lines.append("}")
        return "\n".join(lines)
    if fmt == "mermaid":
        ids = {n: f"n{i}" for i, n in enumerate(p.nodes)}
        lines = ["graph LR"]
        for n, pn in p.nodes.items():
            lines.append(f'  {ids[n]}["{n.step} ({pn.step.kind})<br/>{n.platform}"]')
        for a, b in p.edges():
            lines.append(f"  {ids[a]} --> {ids[b]}")
        return "\n".join(lines)
    lines = []
    for n, pn in p.nodes.items():
        deps = ", ".join(str(d) for d in pn.deps)
        lines.append(f"{n!s:40} {pn.step.kind:6}" + (f" <- {deps}" if deps else ""))
    return "\n".join(lines)

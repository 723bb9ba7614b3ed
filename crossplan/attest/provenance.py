"""SLSA v1 provenance of one platform image: an in-toto Statement whose subject is the
platform manifest, whose ``resolvedDependencies`` are the source trees, toolchains,
sysroot packages and the base, and whose build definition carries every contributing
node's key components and its dependencies' output digests, so that anyone can recompute
each action key: ``blake3(canonical({"components": C, "deps": D}))``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crossplan.attest.contents import ImageFacts
from crossplan.planner.graph import NodeId
from crossplan.planner.keys import KEY_SCHEMA, canonical
from crossplan.planner.plan import Plan

__all__ = ["BUILD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "provenance_json"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://crossplan.invalid/buildtypes/plan/v1"
BUILDER_ID = "https://crossplan.invalid/builder/plan-run"


def _closure(plan: Plan, top: NodeId, platform: str) -> list[NodeId]:
    """``top`` and every node it needs for ``platform`` (platform-independent ones too)."""
    seen: dict[NodeId, None] = {}
    todo = [top]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen[n] = None
        for d in plan.nodes[n].deps:
            if d.platform in (platform, "any"):
                todo.append(d)
    return sorted(seen, key=str)


def provenance_json(
    facts: ImageFacts, plan: Plan, keys: Mapping[NodeId, str],
    outputs: Mapping[NodeId, Mapping[str, str]], *, subject_name: str, tool_version: str,
) -> bytes:
    """The in-toto statement (canonical JSON bytes). ``keys``: each node's action key in
    this run; ``outputs``: each node's output digests (path -> blake3)."""
    plat = str(facts.platform)
    top = NodeId(facts.step, "any")
    nodes = _closure(plan, top, plat)
    steps: list[dict[str, Any]] = []
    for n in nodes:
        pn = plan.nodes[n]
        comps = pn.action.components if pn.action is not None else pn.components
        deps = sorted({*pn.deps})
        steps.append({
            "node": str(n),
            "key": keys.get(n),
            "components": dict(comps),
            "deps": {str(d): dict(outputs.get(d, {})) for d in deps},
        })
    resolved: list[dict[str, Any]] = []
    for s in facts.sources:
        if s.tree:
            resolved.append({"name": f"source:{s.step}", "uri": f"crossplan:step/{s.step}",
                             "digest": {"blake3": s.tree},
                             "annotations": {"kind": s.kind, "treeDigest": "crossplan tree"}})
        if s.toolchain:
            resolved.append({"name": f"toolchain:{s.step}", "uri": f"crossplan:toolchain/{s.kind}",
                             "annotations": {"identity": s.toolchain, "node": s.node}})
    for p in facts.packages:
        if p.kind == "sysroot":
            dep: dict[str, Any] = {"name": f"sysroot:{p.step}:{p.name}", "uri": p.purl}
            if len(p.sha256) == 64:
                dep["digest"] = {"sha256": p.sha256}
            resolved.append(dep)
    if facts.base is not None:
        name, digest = facts.base
        resolved.append({"name": "base", "uri": f"oci:{name}",
                         "digest": {"sha256": digest.partition(":")[2]},
                         "annotations": {"platform": plat}})
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name,
                     "digest": {"sha256": facts.manifest.partition(":")[2]}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "project": facts.project, "step": facts.step, "platform": plat,
                    "platforms": [str(p) for p in plan.platforms],
                },
                "internalParameters": {
                    "keySchema": KEY_SCHEMA,
                    "keyFunction": 'blake3(canonical_json({"components": components, '
                                   '"deps": deps})); canonical_json: sorted keys, no '
                                   "whitespace, UTF-8",
                    "sourceDateEpoch": facts.created,
                    "buildPlatform": str(plan.build_platform),
                    "steps": steps,
                },
                "resolvedDependencies": resolved,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"crossplan": tool_version}},
                "metadata": {"invocationId": f"{facts.step}@{plat}:{keys.get(top, '')}"},
            },
        },
    }
    return canonical(statement)
